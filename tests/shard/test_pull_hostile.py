"""Route pulls against a hostile upstream: a camera URL an admin configured
may point at a compromised or broken device, and it must cost us bounded
memory, time and connections whatever it sends.

Each upstream here is a raw socket peer written in the test (loopback only).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from hub.errors import NotFound
from hub.media.rtsp import NEED_DATA, RtspReader, RtspRequest
from hub.shard.pull_client import MAX_QUEUED
from tests.shard.test_pull import SDP, Env, run, until

MiB = 1 << 20


def answer(req: RtspRequest, status: str = "200 OK", *extra: str, body: bytes = b"") -> bytes:
    head = [f"RTSP/1.0 {status}", f"CSeq: {req.headers.get('CSeq')}", *extra]
    if body:
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def play_answer(req: RtspRequest) -> bytes:
    """A polite camera's answer to each request of the pull's handshake."""
    if req.method == "DESCRIBE":
        return answer(req, "200 OK", "Content-Type: application/sdp", body=SDP.encode())
    if req.method == "SETUP":
        return answer(req, "200 OK", "Session: F00D", f"Transport: {req.headers.get('Transport')}")
    return answer(req)


class RawUpstream:
    """A listening socket; `accept()` gives the pull's connection as a raw socket."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def url(self, path: str = "/cam") -> str:
        return f"rtsp://127.0.0.1:{self.port}{path}"

    async def accept(self) -> socket.socket:
        conn, _ = await asyncio.get_running_loop().sock_accept(self.sock)
        conn.setblocking(False)
        return conn

    async def handshake(self, conn: socket.socket) -> None:
        """Answer the pull's requests up to and including PLAY."""
        loop = asyncio.get_running_loop()
        reader = RtspReader()
        while True:
            data = await loop.sock_recv(conn, 65536)
            assert data, "the pull hung up during its handshake"
            reader.feed(data)
            while (req := reader.next_event()) is not NEED_DATA:
                assert isinstance(req, RtspRequest)
                await loop.sock_sendall(conn, play_answer(req))
                if req.method == "PLAY":
                    return

    def close(self) -> None:
        self.sock.close()


class NotFoundUpstream:
    """An RTSP server that has no stream: OPTIONS is answered, anything else
    404; it counts the connections made to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        reader = RtspReader()
        try:
            while data := await r.read(65536):
                reader.feed(data)
                while (req := reader.next_event()) is not NEED_DATA:
                    assert isinstance(req, RtspRequest)
                    w.write(answer(req, "200 OK" if req.method == "OPTIONS" else "404 Not Found"))
        except (ConnectionError, OSError):
            pass
        w.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def test_an_upstream_that_asks_and_never_reads_the_answers_is_dropped() -> None:
    """A live upstream floods requests (a 4 KiB CSeq each, echoed in our
    answer) and never reads: before the bound, 200 MiB sent left 196 MiB in
    our write buffer, and it grew for as long as the upstream sent."""
    async def main() -> None:
        up = RawUpstream()
        env = Env({"/h": (up.url(), False)})
        loop = asyncio.get_running_loop()
        conn: socket.socket | None = None
        try:
            accepted = loop.create_task(up.accept())
            asking = loop.create_task(env.pulls.ensure("/h"))
            conn = await accepted
            await up.handshake(conn)
            stream = await asking
            session = env.pulls.pulls["/h"].session
            assert session is not None and session.transport is not None
            transport = session.transport
            flood = (b"OPTIONS * RTSP/1.0\r\nCSeq: " + b"7" * 4096 + b"\r\n\r\n") * 64
            sent, peak = 0, 0
            try:
                while sent < 64 * MiB:
                    await asyncio.wait_for(loop.sock_sendall(conn, flood), 5.0)
                    sent += len(flood)
                    peak = max(peak, transport.get_write_buffer_size())
            except (ConnectionError, OSError):
                pass  # dropped: what we want
            peak = max(peak, transport.get_write_buffer_size())
            assert session.closed and stream.closed, (
                f"{sent // MiB} MiB of requests never read: still connected, {peak // MiB} MiB queued")
            assert peak <= MAX_QUEUED + 64 * 1024
        finally:
            if conn is not None:
                conn.close()
            await env.close()
            up.close()

    run(main)


def test_a_path_no_upstream_serves_is_tried_once_per_ask() -> None:
    """A directory route sends every path under it upstream: a stranger who
    asks for random names must not leave pulls behind that reconnect on their
    own. Before, each ask left a pull retrying (with the real back-off, about
    14 connections in the 300 s idle time); 50 asks made 569 connections
    within 2 s with this test's short back-off."""
    async def main() -> None:
        up = NotFoundUpstream()
        port = await up.start()
        env = Env({}, backoff_min=0.05, backoff_max=0.2, idle_timeout=300.0)
        env.pulls.routes = lambda p: (f"rtsp://127.0.0.1:{port}/nvr{p}", False) if p.startswith("/hr/") else None
        try:
            for i in range(20):
                try:
                    await env.pulls.ensure(f"/hr/guess{i}")
                except NotFound:
                    pass
            await until(lambda: len(env.pulls) == 0, timeout=1.0)
            await asyncio.sleep(0.5)  # several back-offs
            assert up.connections == 20 and len(env.pulls) == 0
        finally:
            await env.close()
            up.close()

    run(main)


def test_a_pull_that_was_live_still_reconnects_while_wanted() -> None:
    """Giving up at once is for pulls that never went live: a camera that
    reboots under its readers is tried again."""
    async def main() -> None:
        up = RawUpstream()
        env = Env({"/cam": (up.url(), False)})
        loop = asyncio.get_running_loop()
        try:
            accepted = loop.create_task(up.accept())
            asking = loop.create_task(env.pulls.ensure("/cam"))
            conn = await accepted
            await up.handshake(conn)
            await asking
            conn.close()  # the camera reboots
            t0 = time.monotonic()
            again = await asyncio.wait_for(up.accept(), 3.0)
            assert time.monotonic() - t0 < 1.0
            again.close()
        finally:
            await env.close()
            up.close()

    run(main)


def test_an_upstream_that_answers_each_request_just_in_time_is_dropped_at_the_handshake_deadline() -> None:
    """Each answer comes just before the per-request deadline and the SDP
    has the 32 tracks the parser allows: the handshake is 35 exchanges. Before
    the handshake deadline it ran 35 × 0.2 s = 7.0 s here (35 × 5 s with the
    defaults, twice that when each request is first refused with a 401) while
    askers timed out and the cluster's claim of the path (15 s) expired."""
    many = SDP.split("m=video")[0] + "".join(
        f"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID={i}\r\n" for i in range(32))

    async def main() -> None:
        up = RawUpstream()
        env = Env({"/slow": (up.url(), False)}, connect_timeout=0.25, handshake_timeout=1.0)
        loop = asyncio.get_running_loop()
        conn: socket.socket | None = None
        try:
            accepted = loop.create_task(up.accept())
            asking = loop.create_task(env.pulls.ensure("/slow"))
            conn = await accepted
            t0 = time.monotonic()
            reader = RtspReader()
            answered = 0
            while time.monotonic() - t0 < 3.0 and (data := await asyncio.wait_for(loop.sock_recv(conn, 65536), 3.0)):
                reader.feed(data)
                while (req := reader.next_event()) is not NEED_DATA:
                    assert isinstance(req, RtspRequest)
                    await asyncio.sleep(0.2)  # just in time
                    reply = (answer(req, "200 OK", "Content-Type: application/sdp", body=many.encode())
                             if req.method == "DESCRIBE" else play_answer(req))
                    try:
                        await loop.sock_sendall(conn, reply)
                    except (ConnectionError, OSError):
                        break
                    answered += 1
            took = time.monotonic() - t0
            assert took < 2.0, f"the handshake ran {took:.1f} s ({answered} answers)"
            try:
                await asking
            except NotFound:
                pass
        finally:
            if conn is not None:
                conn.close()
            await env.close()
            up.close()

    run(main)


def test_an_answer_naming_channel_255_fails_the_attempt_before_anything_is_published(
        caplog: pytest.LogCaptureFixture) -> None:
    """`interleaved=255` means channels 255-256, and 256 is no channel: it
    reached the ingest's channel table and raised IndexError there, after the
    stream had been published (a traceback in the shard's log per attempt,
    and a stream that went live and ended at once)."""
    async def main() -> None:
        up = RawUpstream()
        env = Env({"/x": (up.url(), False)})
        opened: list[str] = []
        env.streams.on_stream_opened.append(lambda s: opened.append(s.path))
        loop = asyncio.get_running_loop()
        conn: socket.socket | None = None
        try:
            accepted = loop.create_task(up.accept())
            asking = loop.create_task(env.pulls.ensure("/x"))
            conn = await accepted
            reader = RtspReader()
            while data := await asyncio.wait_for(loop.sock_recv(conn, 65536), 3.0):
                reader.feed(data)
                while (req := reader.next_event()) is not NEED_DATA:
                    assert isinstance(req, RtspRequest)
                    reply = (answer(req, "200 OK", "Session: F00D", "Transport: RTP/AVP/TCP;unicast;interleaved=255")
                             if req.method == "SETUP" else play_answer(req))
                    await loop.sock_sendall(conn, reply)
            with pytest.raises(NotFound):
                await asking
            assert opened == []
        finally:
            if conn is not None:
                conn.close()
            await env.close()
            up.close()

    with caplog.at_level(logging.INFO, logger="hub.shard.pull"):
        run(main)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_askers_flooding_one_path_reach_a_failing_upstream_once_per_back_off() -> None:
    """A player retrying a routed path in a loop (or a stranger doing it on
    purpose) must not become a connection flood on the camera: each ask
    started an attempt (a new pull, or one cutting the back-off short).
    Now one path's upstream is tried at most once per shortest back-off."""
    async def main() -> None:
        up = NotFoundUpstream()
        port = await up.start()
        env = Env({"/cam": (f"rtsp://127.0.0.1:{port}/cam", False)}, backoff_min=0.5, backoff_max=1.0)
        try:
            t0 = time.monotonic()
            refused = 0
            while time.monotonic() - t0 < 1.2:  # ~0.5 s spacing: 3 attempts at most
                try:
                    await env.pulls.ensure("/cam")
                except NotFound:
                    refused += 1
                await asyncio.sleep(0.01)
            assert refused > 20  # every ask answered at once
            assert 2 <= up.connections <= 3, up.connections
        finally:
            await env.close()
            up.close()

    run(main)


def test_a_reader_asking_cuts_a_back_off_short_at_most_once_per_shortest_back_off() -> None:
    """A pull that was live and lost its camera waits out its back-off; a
    reader asking tries at once, but asks in a loop do not each try."""
    async def main() -> None:
        up = RawUpstream()
        env = Env({"/cam": (up.url(), True)}, backoff_min=0.5, backoff_max=30.0)
        loop = asyncio.get_running_loop()
        attempts = 0

        async def refuse_all() -> None:  # the camera's RTSP service is broken: hang up at once
            nonlocal attempts
            while True:
                conn = await up.accept()
                attempts += 1
                conn.close()

        try:
            accepted = loop.create_task(up.accept())
            asking = loop.create_task(env.pulls.ensure("/cam"))
            conn = await accepted
            await up.handshake(conn)
            await asking
            refusing = loop.create_task(refuse_all())
            conn.close()  # the camera drops us
            await until(lambda: attempts >= 1, timeout=3.0)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.2:
                try:
                    await asyncio.wait_for(env.pulls.ensure("/cam"), 0.05)
                except (NotFound, asyncio.TimeoutError):
                    pass
            assert attempts <= 4, attempts  # the first, then ~0.5 s apart (was one per ask)
            refusing.cancel()
        finally:
            await env.close()
            up.close()

    run(main)
