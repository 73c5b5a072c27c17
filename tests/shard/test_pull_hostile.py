"""Route pulls against a hostile upstream: a camera URL an admin configured
may point at a compromised or broken device, and it must cost us bounded
memory, time and connections whatever it sends.

Each upstream here is a raw socket peer written in the test (loopback only).
"""

from __future__ import annotations

import asyncio
import socket

from hub.media.rtsp import NEED_DATA, RtspReader, RtspRequest
from hub.shard.pull_client import MAX_QUEUED
from tests.shard.test_pull import SDP, Env, run

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

