"""Route pulls against an in-test RTSP upstream stub (handshake, auth,
reconnects, idle closing, deletion) — fast and deterministic.

The end-to-end pulls from a real upstream instance of our server live in
`test_pull_e2e.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
import uvloop

from hub.child import ChildArgs
from hub.config import Config
from hub.errors import NotFound
from hub.media.rtsp import RtspReader, RtspRequest, RtspResponse, Headers, NEED_DATA
from hub.ring import RingReader
from hub.shard.pull import PullManager, PullSettings, UpstreamUrl
from hub.shard.streams import StreamTable
from hub.udp_ports import PortPairPool

TEST_TIMEOUT = 10.0
REALM = "upstream"
NONCE = "0123456789abcdef"

# An H.264 + AAC description as a camera writes it (no sprop: in-band only).
SDP = (
    "v=0\r\n"
    "o=- 0 0 IN IP4 127.0.0.1\r\n"
    "s=cam\r\n"
    "t=0 0\r\n"
    "a=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1\r\n"
    "a=control:trackID=0\r\n"
    "m=audio 0 RTP/AVP 97\r\n"
    "a=rtpmap:97 MPEG4-GENERIC/44100/1\r\n"
    "a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1208\r\n"
    "a=control:trackID=1\r\n"
)

# Two RTP packets of track 0, written by hand: V=2, M=1, PT=96, seq 1 and 2,
# timestamps 1000 and 4600 (one frame at 25 fps later), SSRC 0x11223344,
# each a single-NAL-unit packet: an IDR slice (type 5), then a non-IDR (type 1).
IDR = bytes.fromhex("65888400ff")
P_SLICE = bytes.fromhex("419a0011")
RTP_IDR = bytes.fromhex("80e00001" "000003e8" "11223344") + IDR
RTP_P = bytes.fromhex("80e00002" "000011f8" "11223344") + P_SLICE
# Two more of track 0 (seq 3 at ts 8200, seq 4 at ts 11800), for the UDP test.
RTP_P3 = bytes.fromhex("80e00003" "00002008" "11223344") + P_SLICE
RTP_P4 = bytes.fromhex("80e00004" "00002e18" "11223344") + P_SLICE
# ...and one AAC packet of track 1: PT=97, M=1, seq 7, ts 0, AU-headers-length
# 16 bits, one AU header (size 3 << 3 = 0x0018), the 3-byte frame.
AAC_FRAME = bytes.fromhex("210049")
RTP_AAC = bytes.fromhex("80e10007" "00000000" "55667788") + bytes.fromhex("00100018") + AAC_FRAME


def interleaved(channel: int, payload: bytes) -> bytes:
    return bytes([0x24, channel, len(payload) >> 8, len(payload) & 0xFF]) + payload


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(fn(), TEST_TIMEOUT)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        return r.run(bounded())


class Upstream:
    """A tiny RTSP server: answers one pull conversation per connection.

    `auth` = "digest" / "basic" demands credentials user:pa ss (RFC 2617
    response computed here with hashlib, not with the code under test).
    After PLAY it writes `frames` (bytes), then closes if `drop_after_play`.
    """

    def __init__(self, *, auth: str | None = None, frames: bytes = b"", drop_after_play: bool = False,
                 public: str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER",
                 silent: bool = False, session: str = "F00D;timeout=60", udp_only: bool = False) -> None:
        self.auth = auth
        #: Answer 461 to RTP over TCP; over UDP, send `udp_packets` (track, RTP)
        #: from the server ports after PLAY (as VLC's RTSP server does).
        self.udp_only = udp_only
        self.udp_packets: list[tuple[int, bytes]] = []
        self.udp_socks: list[tuple[socket.socket, socket.socket]] = []
        self.client_ports: list[tuple[int, int]] = []
        self.session = session  # the Session header SETUP answers with
        self.frames = frames
        self.drop_after_play = drop_after_play
        self.public = public
        self.silent = silent  # accept TCP, never answer
        self.requests: list[RtspRequest] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/live/cam", creds: str = "") -> str:
        return f"rtsp://{creds}127.0.0.1:{self.port}{path}"

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    async def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.server is not None:
            self.server.close()
        for pair in self.udp_socks:
            for sock in pair:
                sock.close()

    def _send_udp(self) -> None:
        for track, packet in self.udp_packets:
            self.udp_socks[track][0].sendto(packet, ("127.0.0.1", self.client_ports[track][0]))

    def _authorized(self, req: RtspRequest) -> bool:
        value = req.headers.get("Authorization")
        if self.auth is None:
            return True
        if value is None:
            return False
        if self.auth == "basic":
            return value == "Basic dXNlcjpwYSBzcw=="  # base64("user:pa ss")
        fields = dict(p.strip().split("=", 1) for p in value[len("Digest "):].split(","))
        fields = {k: v.strip('"') for k, v in fields.items()}
        ha1 = md5(f"user:{REALM}:pa ss")
        want = md5(f"{ha1}:{NONCE}:{md5(req.method + ':' + fields['uri'])}")
        return fields["username"] == "user" and fields["uri"] == req.uri and fields["response"] == want

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(w)
        reader = RtspReader()
        try:
            while data := await r.read(65536):
                reader.feed(data)
                while (req := reader.next_event()) is not NEED_DATA:
                    assert isinstance(req, RtspRequest)
                    self.requests.append(req)
                    if self.silent:
                        continue
                    w.write(bytes(self._answer(req)))
                    if req.method == "PLAY" and self._authorized(req):
                        w.write(self.frames)
                        if self.udp_only:
                            self._send_udp()
                        if self.drop_after_play:
                            await w.drain()
                            w.close()
                            return
                await w.drain()
        except (ConnectionError, OSError):
            pass

    def _answer(self, req: RtspRequest) -> RtspResponse:
        h = Headers([("CSeq", req.headers.get("CSeq") or "0")])
        if not self._authorized(req):
            if self.auth == "basic":
                h.add("WWW-Authenticate", f'Basic realm="{REALM}"')
            else:
                h.add("WWW-Authenticate", f'Digest realm="{REALM}", nonce="{NONCE}"')
            return RtspResponse(401, headers=h)
        m = req.method
        if m == "OPTIONS":
            h.add("Public", self.public)
        elif m == "DESCRIBE":
            h.add("Content-Base", f"rtsp://127.0.0.1:{self.port}/live/cam/")
            h.add("Content-Type", "application/sdp")
            return RtspResponse(200, headers=h, body=SDP.encode())
        elif m == "SETUP" and self.udp_only:
            offer = req.headers.get("Transport") or ""
            if "/TCP" in offer:
                return RtspResponse(461, headers=h)
            ports = offer.split("client_port=")[1].split(";")[0].split("-")
            self.client_ports.append((int(ports[0]), int(ports[1])))
            pair = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            for sock in pair:
                sock.bind(("127.0.0.1", 0))
            self.udp_socks.append(pair)
            h.add("Session", self.session)
            h.add("Transport", f"RTP/AVP;unicast;client_port={ports[0]}-{ports[1]};"
                               f"server_port={pair[0].getsockname()[1]}-{pair[1].getsockname()[1]}")
        elif m == "SETUP":
            h.add("Session", self.session)
            h.add("Transport", (req.headers.get("Transport") or "") + ";ssrc=11223344")
        elif m in ("PLAY", "GET_PARAMETER", "TEARDOWN"):
            h.add("Session", "F00D")
        return RtspResponse(200, headers=h)


class Env:
    """A shard's stream table and pull manager in this test's loop."""

    def __init__(self, routes: dict[str, tuple[str, bool]], **settings: Any) -> None:
        args = ChildArgs("shard", 0, -1, f"pulltest{os.getpid()}", "/tmp", Config())
        self.wakes: list[Any] = []
        self.streams = StreamTable(args, lambda reader, s: self.wakes.append(s))
        self.routes = routes
        base: dict[str, Any] = dict(connect_timeout=1.0, backoff_min=0.05, backoff_max=0.2, idle_timeout=30.0,
                    session_timeout=30.0)
        base.update(settings)
        self.pulls = PullManager(self.streams, routes.get, PullSettings(**base))

    async def close(self) -> None:
        await self.pulls.aclose()
        self.streams.close_all()


async def until(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


FRAMES = interleaved(0, RTP_IDR) + interleaved(2, RTP_AAC) + interleaved(0, RTP_P)


# -- URLs -----------------------------------------------------------------------
def test_upstream_url_strips_and_masks_credentials() -> None:
    u = UpstreamUrl.parse("rtsp://admin:p%40ss@cam.local/Streaming/101?x=1")
    assert (u.url, u.host, u.port, u.tls) == ("rtsp://cam.local/Streaming/101?x=1", "cam.local", 554, False)
    assert (u.username, u.password) == ("admin", "p@ss")
    assert u.masked == "rtsp://admin:***@cam.local/Streaming/101?x=1"
    v = UpstreamUrl.parse("rtsps://[::1]:8322")
    assert (v.url, v.host, v.port, v.tls, v.username, v.password) == ("rtsps://[::1]:8322/", "::1", 8322, True,
                                                                      None, None)
    assert UpstreamUrl.parse("rtsp://h:9/a").masked == "rtsp://h:9/a"
    for bad in ("http://h/x", "rtsp:///x", "rtsp://h:99999/x"):
        with pytest.raises(NotFound):
            UpstreamUrl.parse(bad)


# -- the conversation -------------------------------------------------------------
def test_an_upstream_that_only_sends_udp_is_set_up_over_udp() -> None:
    """VLC's RTSP server (and cameras that only send UDP) answer 461 to RTP
    over TCP: the pull then sets every track up again over UDP, a pair of
    the shard's slice each, and takes RTP from the upstream's server port
    only (the sockets are connected to it: a datagram from anywhere else
    never reaches the ingest)."""
    async def main() -> None:
        up = await Upstream(udp_only=True).start()
        pool = PortPairPool(31600, 31699)
        env = Env({"/relay/udp": (up.url(), False)}, udp_ports=lambda: pool)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("127.0.0.1", 0))
        try:
            up.udp_packets = [(0, RTP_IDR), (0, RTP_P), (1, RTP_AAC)]
            stream = await env.pulls.ensure("/relay/udp")
            assert [t.codec for t in stream.tracks] == ["H264", "MPEG4-GENERIC"]
            r = up.requests
            assert up.methods() == ["OPTIONS", "DESCRIBE", "SETUP", "SETUP", "SETUP", "PLAY"]
            assert r[2].headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"
            ports = [q.headers.get("Transport") for q in r[3:5]]
            assert ports == [f"RTP/AVP;unicast;client_port={a}-{a + 1}" for a, _ in up.client_ports]
            assert len(pool._used) == 2 and all(a in pool.ports for a, _ in up.client_ports)
            ring = RingReader.attach(stream.ring.name)
            entries: list[Any] = []
            await until(lambda: video_count(ring, entries) >= 2 and len(entries) >= 3)
            # A stranger's datagram, then the upstream's next frame on the same port:
            # once that frame is in, the stranger's was dealt with before it.
            stranger.sendto(RTP_P3, ("127.0.0.1", up.client_ports[0][0]))
            up.udp_socks[0][0].sendto(RTP_P4, ("127.0.0.1", up.client_ports[0][0]))
            await until(lambda: video_count(ring, entries) >= 3)
            ring.close()
            video = [e for e in entries if e.track == 0]
            assert [(e.data, e.keyframe) for e in video][:2] == [(b"\x00\x00\x00\x05" + IDR, True),
                                                                 (b"\x00\x00\x00\x04" + P_SLICE, False)]
            assert [e.pts - video[0].pts for e in video] == [0, 3600, 10800]  # seq 4's frame: not the stranger's
            assert [e.data for e in entries if e.track == 1] == [AAC_FRAME]
            session = env.pulls.pulls["/relay/udp"].session
            assert session is not None and len(session._udp) == 2
            assert session._udp[0].rejected == 0  # the stranger's never got past the kernel
        finally:
            stranger.close()
            await env.close()
            await up.close()
        assert not pool._used  # the pairs went back with the session

    run(main)


def test_pull_conversation_and_ring_entries() -> None:
    async def main() -> None:
        up = await Upstream(frames=FRAMES).start()
        env = Env({"/relay/cam": (up.url(), False)})
        try:
            stream = await env.pulls.ensure("/Relay/cam")
            assert stream.path == "/relay/cam"
            assert stream.addr == up.url()
            assert [t.codec for t in stream.tracks] == ["H264", "MPEG4-GENERIC"]
            assert "a=control:trackID=1" in stream.sdp
            assert env.streams.get("/relay/cam") is stream
            ring = RingReader.attach(stream.ring.name)
            entries: list[Any] = []
            await until(lambda: video_count(ring, entries) >= 2 and len(entries) >= 3)
            ring.close()
            video = [e for e in entries if e.track == 0]
            audio = [e for e in entries if e.track == 1]
            # Access units as AVCC (4-byte length + NAL), one frame (3600 ticks) apart.
            assert [(e.data, e.keyframe) for e in video] == [(b"\x00\x00\x00\x05" + IDR, True),
                                                             (b"\x00\x00\x00\x04" + P_SLICE, False)]
            assert video[1].pts - video[0].pts == 3600
            assert [e.data for e in audio] == [AAC_FRAME]
            methods = up.methods()
            assert methods == ["OPTIONS", "DESCRIBE", "SETUP", "SETUP", "PLAY"]
            r = up.requests
            assert [q.uri for q in r] == [up.url(), up.url(), up.url("/live/cam/trackID=0"),
                                          up.url("/live/cam/trackID=1"), up.url("/live/cam/")]
            assert r[1].headers.get("Accept") == "application/sdp"
            assert r[2].headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"
            assert r[3].headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=2-3"
            assert r[2].headers.get("Session") is None and r[3].headers.get("Session") == "F00D"
            # No Range (npt=0.000- made GStreamer's RTSP server restart a shared
            # media: test_other_clients.test_our_pull_leaves_a_cameras_other_viewers_alone).
            assert r[4].headers.get("Session") == "F00D" and r[4].headers.get("Range") is None
            assert [q.headers.get("CSeq") for q in r] == ["1", "2", "3", "4", "5"]
            assert stream.size >= len(FRAMES)  # PLAY's answer and the frames
        finally:
            await env.close()
            await up.close()
        # closing the manager tore the session down
        await until(lambda: "TEARDOWN" in up.methods())
        assert up.requests[-1].headers.get("Session") == "F00D"

    run(main)


def test_keepalive_uses_get_parameter_when_public_lists_it_else_options() -> None:
    async def main() -> None:
        for public, method in (("OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER", "GET_PARAMETER"),
                               ("OPTIONS, DESCRIBE, SETUP, PLAY", "OPTIONS")):
            up = await Upstream(frames=FRAMES, public=public).start()
            env = Env({"/k": (up.url(), False)}, keepalive_interval=0.1)
            try:
                await env.pulls.ensure("/k")
                await until(lambda: len(up.requests) >= 7)
                extra = up.requests[5:7]
                assert [q.method for q in extra] == [method, method]
                assert all(q.headers.get("Session") == "F00D" and q.uri == up.url() for q in extra)
            finally:
                await env.close()
                await up.close()

    run(main)


@pytest.mark.parametrize("session,interval,expected", [
    ("F00D", 0.1, 0.1),  # no timeout in the header: the configured interval
    ("F00D;timeout=60", 0.1, 0.1),  # the interval when it is the shorter
    ("F00D;timeout=1", 5.0, 0.5),  # half the upstream's timeout when that is
])
def test_keepalive_every_interval_or_half_the_session_timeout(session: str, interval: float,
                                                              expected: float) -> None:
    async def main() -> None:
        up = await Upstream(frames=FRAMES, session=session).start()
        env = Env({"/k": (up.url(), False)}, keepalive_interval=interval)
        try:
            await env.pulls.ensure("/k")
            t0 = time.monotonic()
            await until(lambda: len(up.requests) >= 7, timeout=3 * expected + 1.0)
            took = time.monotonic() - t0
            # Two keep-alives, one interval apart: not sooner, and not much later.
            assert up.methods()[5:7] == ["GET_PARAMETER", "GET_PARAMETER"]
            assert 2 * expected * 0.9 <= took < 2 * expected + 0.8
        finally:
            await env.close()
            await up.close()

    run(main)


@pytest.mark.parametrize("scheme", ["digest", "basic"])
def test_credentials_answer_the_challenge_and_never_travel_in_the_url(scheme: str) -> None:
    async def main() -> None:
        up = await Upstream(auth=scheme, frames=FRAMES).start()
        env = Env({"/sec": (up.url(creds="user:pa%20ss@"), False)})
        try:
            stream = await env.pulls.ensure("/sec")
            assert stream.addr == up.url(creds="user:***@")
            methods = up.methods()
            # OPTIONS refused, retried with credentials; then every request carries them.
            assert methods == ["OPTIONS", "OPTIONS", "DESCRIBE", "SETUP", "SETUP", "PLAY"]
            assert up.requests[0].headers.get("Authorization") is None
            assert all(q.headers.get("Authorization") for q in up.requests[1:])
            assert all("user" not in q.uri for q in up.requests)
            if scheme == "basic":
                assert up.requests[1].headers.get("Authorization") == "Basic dXNlcjpwYSBzcw=="
            else:
                # The digest of DESCRIBE, computed by hand for its URI.
                ha1 = md5(f"user:{REALM}:pa ss")
                resp = md5(f"{ha1}:{NONCE}:{md5('DESCRIBE:' + up.url())}")
                assert up.requests[2].headers.get("Authorization") == (
                    f'Digest username="user", realm="{REALM}", nonce="{NONCE}", uri="{up.url()}", '
                    f'response="{resp}"')
        finally:
            await env.close()
            await up.close()

    run(main)


def test_wrong_or_missing_credentials_fail_with_not_found() -> None:
    async def main() -> None:
        up = await Upstream(auth="digest").start()
        env = Env({"/bad": (up.url(creds="user:wrong@"), False), "/none": (up.url(), False)})
        try:
            for path in ("/bad", "/none"):
                with pytest.raises(NotFound):
                    await env.pulls.ensure(path)
            assert env.streams.get("/bad") is None
        finally:
            await env.close()
            await up.close()

    run(main)


# -- failures: nothing waits longer than the connect timeout ------------------------
def test_no_route_and_dead_upstreams_fail_fast_without_blocking_the_loop() -> None:
    async def main() -> None:
        silent = await Upstream(silent=True).start()
        refused = await Upstream().start()
        await refused.close()  # nothing listens there any more
        env = Env({"/silent": (silent.url(), False), "/refused": (refused.url(), False)},
                  connect_timeout=0.4)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.get_running_loop().create_task(ticker())
        try:
            with pytest.raises(NotFound):
                await env.pulls.ensure("/nothing")
            t0 = time.monotonic()
            results = await asyncio.gather(env.pulls.ensure("/silent"), env.pulls.ensure("/refused"),
                                           return_exceptions=True)
            took = time.monotonic() - t0
            assert all(isinstance(r, NotFound) for r in results)
            assert 0.35 < took < 0.8
            assert ticks > 20  # the loop kept turning meanwhile
        finally:
            t.cancel()
            await env.close()
            await silent.close()

    run(main)


# -- reconnects --------------------------------------------------------------------
def test_upstream_drop_ends_the_stream_then_the_pull_republishes() -> None:
    async def main() -> None:
        up = await Upstream(frames=FRAMES, drop_after_play=True).start()
        env = Env({"/flaky": (up.url(), True)})
        ended: list[int] = []
        env.streams.on_stream_closed.append(lambda s: ended.append(s.stream_id))
        try:
            first = await env.pulls.ensure("/flaky")
            # The stream goes live inside the session's start, the pull counts
            # the connect when start returns: wait for both.
            await until(lambda: len(ended) >= 2 and env.streams.get("/flaky") is not None
                        and env.pulls.pulls["/flaky"].connects >= 3)
            second = env.streams.get("/flaky")
            assert second is not None and second.stream_id not in ended
            assert first.stream_id in ended and first.closed
            assert up.connections >= 3
            assert env.pulls.pulls["/flaky"].connects >= 3
        finally:
            await env.close()
            await up.close()

    run(main)


def test_no_data_for_the_session_timeout_reconnects() -> None:
    async def main() -> None:
        up = await Upstream(frames=b"").start()
        env = Env({"/quiet": (up.url(), True)}, session_timeout=0.2)
        try:
            first = await env.pulls.ensure("/quiet")
            await until(lambda: up.connections >= 2)
            assert first.closed
            assert "TEARDOWN" in up.methods()
        finally:
            await env.close()
            await up.close()

    run(main)


def test_backoff_doubles_while_the_upstream_is_down_and_a_reader_cuts_it_short() -> None:
    async def main() -> None:
        up = await Upstream(frames=FRAMES).start()
        port = up.port
        await up.close()
        env = Env({"/down": (up.url(), True)}, backoff_min=0.2, backoff_max=2.0, connect_timeout=0.3)
        try:
            with pytest.raises(NotFound):
                await env.pulls.ensure("/down")
            pull = env.pulls.pulls["/down"]
            assert not pull.stopped  # keepalive: still trying
            # Upstream back on the same port: a reader's ensure triggers an attempt now.
            up2 = Upstream(frames=FRAMES)
            up2.server = await asyncio.start_server(up2._serve, "127.0.0.1", port)
            up2.port = port
            # Attempts at 0, 0.2, 0.6, 1.4 s: at 0.8 s the next one is 0.6 s away.
            await asyncio.sleep(0.8)
            t0 = time.monotonic()
            stream = await env.pulls.ensure("/down")
            assert time.monotonic() - t0 < 0.3
            assert not stream.closed
            await up2.close()
        finally:
            await env.close()

    run(main)


# -- idle closing and deletion -------------------------------------------------------
def test_keepalive_false_closes_after_the_idle_time_without_readers() -> None:
    async def main() -> None:
        up = await Upstream(frames=FRAMES).start()
        env = Env({"/idle": (up.url(), False)}, idle_timeout=0.3)
        try:
            stream = await env.pulls.ensure("/idle")
            stream.readers.add("front-0")
            await asyncio.sleep(0.6)
            assert not stream.closed  # a reader keeps it
            stream.readers.discard("front-0")
            t0 = time.monotonic()
            await until(lambda: stream.closed)
            assert 0.2 < time.monotonic() - t0 < 0.8
            await until(lambda: "TEARDOWN" in up.methods())
            assert env.streams.get("/idle") is None
            await until(lambda: "/idle" not in env.pulls.pulls)
            assert up.connections == 1
            # A new reader pulls it again.
            again = await env.pulls.ensure("/idle")
            assert not again.closed and up.connections == 2
        finally:
            await env.close()
            await up.close()

    run(main)


def test_keepalive_true_stays_without_readers() -> None:
    async def main() -> None:
        up = await Upstream(frames=FRAMES).start()
        env = Env({"/always": (up.url(), True)}, idle_timeout=0.1)
        try:
            stream = await env.pulls.ensure("/always")
            await asyncio.sleep(0.5)
            assert not stream.closed and "TEARDOWN" not in up.methods()
        finally:
            await env.close()
            await up.close()

    run(main)


def test_deleting_the_stream_stops_the_pull_for_good() -> None:
    async def main() -> None:
        up = await Upstream(frames=FRAMES).start()
        env = Env({"/del": (up.url(), True)})
        try:
            stream = await env.pulls.ensure("/del")
            env.streams.close(stream)  # DELETE /api/v1/streams/del
            await until(lambda: "TEARDOWN" in up.methods())
            await asyncio.sleep(0.3)  # several backoffs: no reconnect
            assert up.connections == 1 and env.streams.get("/del") is None
            assert "/del" not in env.pulls.pulls
        finally:
            await env.close()
            await up.close()

    run(main)


def test_concurrent_readers_share_one_pull() -> None:
    async def main() -> None:
        up = await Upstream(frames=FRAMES).start()
        env = Env({"/dir/door": (up.url("/video/door"), False)})
        try:
            a, b, c = await asyncio.gather(*(env.pulls.ensure("/dir/door") for _ in range(3)))
            assert a is b is c and up.connections == 1
            assert up.requests[0].uri == up.url("/video/door")
        finally:
            await env.close()
            await up.close()

    run(main)


def test_shard_routes_come_from_its_route_table(tmp_path: Path) -> None:
    """The shard's lookup: a directory route gives the joined upstream URL."""
    from hub.shard.main import Shard
    from hub.store.routes import Route, RouteTable

    async def main() -> None:
        cfg = Config(data=str(tmp_path))
        shard = Shard(ChildArgs("shard", 0, -1, f"pulltest{os.getpid()}s", str(tmp_path), cfg))
        shard.route_table = RouteTable([Route("/hr/", "rtsp://u:p@h/video", False),
                                        Route("/cam", "rtsp://h2/x", True)])
        assert shard._route_for("/hr/door/video1") == ("rtsp://u:p@h/video/door/video1", False)
        assert shard._route_for("/CAM") == ("rtsp://h2/x", True)
        assert shard._route_for("/other") is None
        assert shard.pulls.settings.idle_timeout == cfg.route_idle_timeout

    run(main)


# == end to end: real upstream instances of our server, ffmpeg pushing ==============
e2e = pytest.mark.e2e


@pytest.fixture(scope="module")
def h264_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    from tests.e2e.tools import make_media

    if shutil.which("ffmpeg") is None:
        pytest.fail("the ffmpeg CLI is required for end-to-end tests")
    return make_media(tmp_path_factory.mktemp("media"), "h264")


def annex_b(avcc: bytes) -> bytes:
    out, i = bytearray(), 0
    while i + 4 <= len(avcc):
        n = int.from_bytes(avcc[i:i + 4], "big")
        out += b"\x00\x00\x00\x01" + avcc[i + 4:i + 4 + n]
        i += 4 + n
    return bytes(out)


def video_count(ring: RingReader, entries: list[Any]) -> int:
    """Read what is new into `entries`; how many video entries so far."""
    entries.extend(ring.read())
    return sum(e.track == 0 for e in entries)


def decode_ring(stream: Any, entries: list[Any]) -> tuple[int, int]:
    """(video frames, audio frames) PyAV decodes from ring entries."""
    import av

    video_desc, audio_desc = stream.tracks[0], stream.tracks[1]
    v = av.CodecContext.create("h264", "r")
    a = av.CodecContext.create("aac", "r")
    a.extradata = audio_desc.asc
    params = b"".join(b"\x00\x00\x00\x01" + p for p in (video_desc.sps, video_desc.pps))
    nv = na = 0
    for e in entries:
        if e.track == 0:
            nv += len(v.decode(av.Packet(params + annex_b(e.data))))
        else:
            na += len(a.decode(av.Packet(e.data)))
    return nv, na


def restart_on(hub_factory: Callable[..., Any], port: int, *args: str) -> Any:
    """A new instance on `port` (the old one's children may still be leaving)."""
    deadline = time.monotonic() + 20
    while True:
        srv = hub_factory("--listen", f"127.0.0.1:{port}", *args, ready=False)
        srv.port = port
        try:
            srv.wait_ready()
            return srv
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@e2e
def test_pull_from_a_real_upstream_decodes_and_survives_its_restart(
        hub_factory: Callable[..., Any], h264_media: Path) -> None:
    from tests.e2e.conftest import wait_live
    from tests.e2e.tools import Pusher

    up = hub_factory("--shards", "1", "--fronts", "1")
    pushers = [Pusher(up.rtsp_url("/live/cam"), h264_media).start()]
    wait_live(up, "/live/cam")

    async def main() -> None:
        env = Env({"/relay/cam": (up.rtsp_url("/live/cam"), True)}, backoff_min=0.5, backoff_max=2.0,
                  connect_timeout=3.0)
        try:
            stream = await env.pulls.ensure("/relay/cam")
            assert [t.codec for t in stream.tracks] == ["H264", "MPEG4-GENERIC"]
            assert (stream.tracks[0].width, stream.tracks[0].height) == (640, 360)
            ring = RingReader.attach(stream.ring.name)
            entries: list[Any] = []
            await until(lambda: video_count(ring, entries) >= 30, timeout=8)
            ring.close()
            nv, na = decode_ring(stream, entries)
            assert nv >= 25 and na >= 10

            # Kill the upstream outright; bring it back on the same port.
            up.proc.kill()
            await asyncio.to_thread(up.proc.wait)
            await until(lambda: stream.closed, timeout=8)
            pushers[0].stop()
            up2 = await asyncio.to_thread(restart_on, hub_factory, up.port, "--shards", "1", "--fronts", "1")
            pushers.append(Pusher(up2.rtsp_url("/live/cam"), h264_media).start())
            await asyncio.to_thread(wait_live, up2, "/live/cam")
            await until(lambda: (s := env.streams.get("/relay/cam")) is not None and not s.closed, timeout=8)
            again = env.streams.get("/relay/cam")
            assert again is not None and again is not stream
            ring = RingReader.attach(again.ring.name)
            entries = []
            await until(lambda: video_count(ring, entries) >= 10, timeout=8)
            ring.close()
            assert decode_ring(again, entries)[0] >= 5
        finally:
            await env.close()

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
            r.run(asyncio.wait_for(main(), 60))
    finally:
        for p in pushers:
            p.stop()


@e2e
def test_downstream_instance_serves_a_route_over_rtsp_and_flv_then_idles_out(
        hub_factory: Callable[..., Any], h264_media: Path, tmp_path: Path) -> None:
    import json
    import urllib.error
    import urllib.request

    from tests.e2e.conftest import wait_live
    from tests.e2e.tools import Pusher, play

    up = hub_factory("--shards", "1", "--fronts", "1")
    pusher = Pusher(up.rtsp_url("/live/cam"), h264_media).start()
    try:
        wait_live(up, "/live/cam")
        data = tmp_path / "down"
        data.mkdir()
        (data / "routetable.json").write_text(json.dumps(
            [{"pattern": "/relay/", "url": up.rtsp_url("/live/"), "keepalive": False}]))
        (data / "config.json").write_text(json.dumps({"route_idle_timeout": 2}))
        down = hub_factory("--data", str(data), "--shards", "2", "--fronts", "2")

        # A reader held open while the checks run: on a loaded machine they
        # can take longer than the 2 s idle time once the plays have ended.
        held = urllib.request.urlopen(f"{down.base}/streams/relay/cam.flv", timeout=10)
        try:
            assert held.read(3) == b"FLV"
            res = play(down.rtsp_url("/relay/cam"), frames=25)
            assert (res.video_codec, res.audio_codec) == ("h264", "aac")
            assert res.video_frames >= 25 and res.advancing() and (res.width, res.height) == (640, 360)
            res = play(f"{down.base}/streams/relay/cam.flv", frames=25)
            assert res.video_frames >= 25 and res.audio_frames > 0 and res.advancing()

            info = down.get_json("/api/v1/streams/relay/cam")
            assert info["addr"] == up.rtsp_url("/live/cam")
            assert up.get_json("/api/v1/streams/live/cam?c=1")["cc"] == 1  # the pull
        finally:
            held.close()
        # No readers left: after the idle time the pull lets go of the upstream.
        deadline = time.monotonic() + 8
        while up.get_json("/api/v1/streams/live/cam?c=1")["cc"] != 0:
            assert time.monotonic() < deadline, "the pull did not idle out"
            time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as err:
            down.get_json("/api/v1/streams/relay/cam")
        assert err.value.code == 404
    finally:
        pusher.stop()
