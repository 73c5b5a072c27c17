"""Shared pieces of the RTSP publisher-session tests (no tests here): the
requests and exact answers of a publisher's handshake, a stand-in
transport, and an FFmpeg-like H.264 + AAC stream to push through it."""

from __future__ import annotations

import asyncio
import base64
import random
from typing import Any, Callable, Coroutine

from hub.media.rtp_aac import AacPacketizer
from hub.media.rtp_h264 import H264Packetizer
from hub.shard.publish import PublishHost, RtspPublisher

from .test_publish_helpers import RingCollector, close_hosts, make_host

SID = "0101010101010101"
SESSION = f"Session: {SID};timeout=60\r\n"
URL = "rtsp://127.0.0.1:1554/live/x"

# FFmpeg's ANNOUNCE body for testsrc 640x360 x264 + 48 kHz stereo AAC, without
# sprop-parameter-sets (so in-band SPS/PPS have something to change).
SDP_H264_AAC = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"
    "a=control:streamid=0\r\n"
    "m=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n"
    "a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=1190\r\n"
    "a=control:streamid=1\r\n"
)
SDP_PCMA = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
            "m=audio 0 RTP/AVP 8\r\na=control:trackID=5\r\n")

# x264's SPS and PPS for 640x360 High 4:4:4 at 25 fps (from FFmpeg's SDP).
SPS = base64.b64decode("Z/QAHpGbKBQF/xOAiAAAAwAIAAADAZB4sWyw")
PPS = base64.b64decode("aOvjxEhE")

# Hand-built RTP packets, V=2, SSRC 0x11223344:
# PT 96 (0x60), M=1 (0xe0): IDR slice (type 5) at ts 1000, seq 1.
IDR = bytes.fromhex("65888400ff")
RTP_IDR = bytes.fromhex("80e00001" "000003e8" "11223344") + IDR
# M=1, non-IDR slice (type 1) at ts 4600 (one 25 fps frame later), seq 2.
P_SLICE = bytes.fromhex("419a0011")
RTP_P = bytes.fromhex("80e00002" "000011f8" "11223344") + P_SLICE
# Single NAL SPS and PPS (M=0) then the IDR (M=1), all at ts 1000, seq 1..3.
RTP_SPS = bytes.fromhex("80600001" "000003e8" "11223344") + SPS
RTP_PPS = bytes.fromhex("80600002" "000003e8" "11223344") + PPS
RTP_IDR3 = bytes.fromhex("80e00003" "000003e8" "11223344") + IDR
# PT 8 PCMA, M=1 then M=0, ts 160 then 320, seq 9 and 10, 4-byte payloads.
RTP_PCMA1 = bytes.fromhex("80880009" "000000a0" "0a0b0c0d") + b"\xd5\xd5\xd5\xd5"
RTP_PCMA2 = bytes.fromhex("8008000a" "00000140" "0a0b0c0d") + b"\x55\x55\x55\x55"
# RTCP SR: V=2 RC=0 PT=200 length 6, SSRC, NTP 0x0000000100000000, RTP ts 1000,
# 5 packets, 500 octets.
RTCP_SR = bytes.fromhex("80c80006" "11223344" "00000001" "00000000" "000003e8" "00000005" "000001f4")


def frame(channel: int, payload: bytes) -> bytes:
    return bytes((0x24, channel)) + len(payload).to_bytes(2, "big") + payload


def request(method: str, cseq: int, *headers: str, uri: str = URL, body: str = "") -> bytes:
    head = f"{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n" + "".join(h + "\r\n" for h in headers)
    if body:
        head += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n" + body).encode()


def announce(cseq: int = 2, sdp: str = SDP_H264_AAC) -> bytes:
    return request("ANNOUNCE", cseq, body=sdp)


def setup_tcp(cseq: int, track: int, a: int) -> bytes:
    return request("SETUP", cseq, f"Transport: RTP/AVP/TCP;unicast;interleaved={a}-{a + 1};mode=record",
                   uri=f"{URL}/streamid={track}")


def record(cseq: int, session: str = SID) -> bytes:
    return request("RECORD", cseq, "Range: npt=0.000-", f"Session: {session}")


SERVER = "Server: ipchub-py\r\n"  # the hosts here have no wall clock: no Date header


def ok(cseq: int, *extra: str) -> bytes:
    return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{SERVER}{SESSION}{''.join(e + chr(13) + chr(10) for e in extra)}\r\n".encode()


def status(code: int, reason: str, cseq: int | None, session: bool = True, *extra: str) -> bytes:
    """An error answer; `session`: one exists (and the error is not 454)."""
    cs = f"CSeq: {cseq}\r\n" if cseq is not None else ""
    sess = SESSION if session else ""
    return f"RTSP/1.0 {code} {reason}\r\n{cs}{SERVER}{sess}{''.join(e + chr(13) + chr(10) for e in extra)}\r\n".encode()


class FakeTransport(asyncio.Transport):
    """Collects writes; `close` ends the connection like a socket would."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.protocol: RtspPublisher | None = None

    def write(self, data: Any) -> None:
        assert not self.closed
        self.out += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.protocol is not None:
                asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1554), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def take(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out


def fixed_random(n: int) -> bytes:
    return b"\x01" * n


def connect(host: PublishHost, already: bytes = b"") -> tuple[RtspPublisher, FakeTransport]:
    """What `adopt_socket` does: connection_made, then the replayed bytes."""
    session = RtspPublisher(host, "/live/x", "127.0.0.1:40000")
    transport = FakeTransport()
    transport.protocol = session
    session.connection_made(transport)
    if already:
        session.data_received(already)
    return session, transport


def run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        try:
            await asyncio.wait_for(fn(), 10)
        finally:
            close_hosts()

    asyncio.run(main())


def go_live(host: PublishHost) -> tuple[RtspPublisher, FakeTransport]:
    session, t = connect(host, announce() + setup_tcp(3, 0, 0) + setup_tcp(4, 1, 2) + record(5))
    out = t.take()
    assert out.endswith(ok(5)), out
    return session, t


def rtp_stream(frames: int = 30, seed: int = 1) -> tuple[list[bytes], list[bytes]]:
    """RTP packets of an H.264 stream (SPS/PPS/IDR, then P frames cut in
    FU-A) and of its AAC audio, as an FFmpeg publisher's."""
    rnd = random.Random(seed)
    vp, ap = H264Packetizer(96, 1, start_seq=65500), AacPacketizer(97, 2, start_seq=7)
    video: list[bytes] = []
    audio: list[bytes] = []
    for f in range(frames):
        key = f % 10 == 0
        nals = ([SPS, PPS] if key else []) + [bytes([0x65 if key else 0x41]) + rnd.randbytes(rnd.choice((300, 5000)))]
        video += vp.packetize(b"".join(len(n).to_bytes(4, "big") + n for n in nals), f * 3600)
        audio += ap.packetize(rnd.randbytes(200), f * 1920)
        audio += ap.packetize(rnd.randbytes(200), f * 1920 + 1024)
    return video, audio


def interleave(video: list[bytes], audio: list[bytes]) -> bytes:
    out = []
    for i in range(max(len(video), len(audio))):
        if i < len(video):
            out.append(frame(0, video[i]))
        if i < len(audio):
            out.append(frame(2, audio[i]))
    return b"".join(out)


def publish_reads(reads: list[bytes], answers: bytearray | None = None) -> list[Any]:
    """The ring entries a live publisher's `reads` make (and in `answers`,
    what the session wrote back meanwhile)."""
    out: list[Any] = []

    async def main() -> None:
        host = make_host(random_bytes=fixed_random, clock=lambda: 0.0)
        session, t = go_live(host)
        assert session.stream is not None
        collector = RingCollector(session.stream)
        for r in reads:
            session.data_received(r)
        collector.close()
        out.extend(collector.entries)
        if answers is not None:
            answers.extend(t.take())
        session.close()

    run(main)
    return out
