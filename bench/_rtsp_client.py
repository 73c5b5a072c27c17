"""A tiny RTSP/TCP publisher and player, used by bench/latency.py (and the
publisher, at a low rate, by bench/footprint.py).

The publisher sends a synthetic H.264 stream whose every frame carries the
sender's ``time.monotonic_ns()`` (CLOCK_MONOTONIC is one clock for all
processes on a machine), so a player in another process can compute the
push->play latency of each frame from the bytes alone. The frames look real
to the server: the parameter sets come from an x264 encode, slices start with
``first_mb_in_slice = 0`` (a new picture, as a multi-slice-aware server
checks), IDR every GOP, and sizes (60 KB I, 8 KB P) that need FU-A.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

from hub.media.access_unit import AccessUnit
from hub.media.rtp import RtpPacket
from hub.media.rtp_h264 import H264Depacketizer, H264Packetizer
from hub.media.rtsp.message import InterleavedFrame, RtspResponse, frame_header
from hub.media.rtsp.reader import NEED_DATA, RtspReader

ROOT = Path(__file__).resolve().parent.parent
SPS = (ROOT / "tests" / "data" / "flv_x264_high_sps.bin").read_bytes()
PPS = (ROOT / "tests" / "data" / "flv_x264_high_pps.bin").read_bytes()

FPS = 25
GOP = 25  # one IDR a second
CLOCK = 90000
I_SIZE = 60_000
P_SIZE = 8_000
#: After the NAL header: first_mb_in_slice = 0 (ue '1'), then slice-header-ish bits.
SLICE_PREFIX = b"\x88\x84"
MAGIC = b"LATB"
#: Layout of a slice NAL: header, SLICE_PREFIX, send time (u64 ns), frame number (u32), MAGIC, padding.
STAMP_AT = 1 + len(SLICE_PREFIX)
_STAMP = struct.Struct(">QI4s")
PAD = 0xAA  # no zero bytes, so no start-code look-alikes in the Annex-B (HLS) output


def sdp(host: str) -> bytes:
    """A video-only session like ffmpeg's, with the x264 parameter sets."""
    sprop = f"{base64.b64encode(SPS).decode()},{base64.b64encode(PPS).decode()}"
    return (f"v=0\r\no=- 0 0 IN IP4 {host}\r\ns=latency\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 packetization-mode=1; sprop-parameter-sets={sprop}; profile-level-id={SPS[1:4].hex()}\r\n"
            f"a=control:streamid=0\r\n").encode()


def _template(idr: bool, size: int) -> bytearray:
    """One AVCC access unit (4-byte length + slice NAL) to stamp in place each frame."""
    nal = bytearray([PAD]) * size
    nal[0] = 0x65 if idr else 0x41
    nal[1:STAMP_AT] = SLICE_PREFIX
    return bytearray(struct.pack(">I", size)) + nal


def read_stamp(nal: bytes | memoryview) -> tuple[int, int] | None:
    """(send time ns, frame number) carried by a slice NAL, or None if not ours."""
    if len(nal) < STAMP_AT + _STAMP.size or nal[0] & 0x1F not in (1, 5):
        return None
    sent, frame, magic = _STAMP.unpack_from(nal, STAMP_AT)
    return (sent, frame) if magic == MAGIC else None


def stamp_of_avcc(au: bytes | memoryview) -> tuple[int, int] | None:
    """The stamp of the first slice NAL of an AVCC access unit."""
    mv = memoryview(au)
    pos = 0
    while pos + 4 <= len(mv):
        n = int.from_bytes(mv[pos:pos + 4], "big")
        got = read_stamp(mv[pos + 4:pos + 4 + n])
        if got is not None:
            return got
        pos += 4 + n
    return None


class RtspConn:
    """Request/response over one TCP connection; `$` frames go to ``on_frame``."""

    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w = r, w
        self.reader = RtspReader(max_body=1 << 20)
        self.cseq = 0
        self.session = ""
        self.on_frame: Callable[[InterleavedFrame, int], None] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> RtspConn:
        r, w = await asyncio.open_connection(host, port)
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(r, w)

    async def request(self, method: str, uri: str, extra: str = "", body: bytes = b"") -> RtspResponse:
        self.cseq += 1
        head = f"{method} {uri} RTSP/1.0\r\nCSeq: {self.cseq}\r\n{extra}"
        if self.session:
            head += f"Session: {self.session}\r\n"
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        self.w.write(head.encode() + b"\r\n" + body)
        now = time.monotonic_ns()
        while True:
            ev = self.reader.next_event()
            if ev is NEED_DATA:
                now = await self._read()
                continue
            if isinstance(ev, InterleavedFrame):
                if self.on_frame is not None:
                    self.on_frame(ev, now)
            elif isinstance(ev, RtspResponse):
                if ev.status != 200:
                    raise RuntimeError(f"{method} {uri}: {ev.status} {ev.reason}")
                s = ev.headers.get("session")
                if s:
                    self.session = s.split(";")[0].strip()
                return ev

    async def _read(self) -> int:
        data = await self.r.read(1 << 18)
        now = time.monotonic_ns()
        if not data:
            raise ConnectionError("closed by server")
        self.reader.feed(data)
        return now

    def dispatch(self, now: int) -> None:
        """Hand every buffered `$` frame to ``on_frame`` (stamped ``now``)."""
        on_frame = self.on_frame
        while (ev := self.reader.next_event()) is not NEED_DATA:
            if on_frame is not None and isinstance(ev, InterleavedFrame):
                on_frame(ev, now)

    async def pump(self) -> None:
        """Read once and dispatch what came. EOF raises ConnectionError."""
        self.dispatch(await self._read())

    def close(self) -> None:
        self.w.close()


async def publish(host: str, port: int, path: str, fps: int = FPS, gop: int = GOP, i_size: int = I_SIZE,
                  p_size: int = P_SIZE, recording: asyncio.Event | None = None) -> None:
    """Push the stamped stream to rtsp://host:port/path until cancelled;
    `recording` is set once RECORD is answered. The defaults are the latency
    bench's stream; bench/footprint.py pushes many light ones."""
    conn = await RtspConn.open(host, port)
    url = f"rtsp://{host}:{port}{path}"
    await conn.request("ANNOUNCE", url, "Content-Type: application/sdp\r\n", sdp(host))
    await conn.request("SETUP", f"{url}/streamid=0",
                       "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n")
    await conn.request("RECORD", url, "Range: npt=0.000-\r\n")
    if recording is not None:
        recording.set()

    async def discard() -> None:  # RTCP receiver reports, keep-alive answers
        while await conn.r.read(65536):
            pass

    drain = asyncio.create_task(discard())
    packetizer = H264Packetizer(96, int.from_bytes(os.urandom(4), "big"))
    key, delta = _template(True, i_size), _template(False, p_size)
    t0 = time.monotonic()
    i = 0
    try:
        while True:
            wait = t0 + i / fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            au = key if i % gop == 0 else delta
            _STAMP.pack_into(au, 4 + STAMP_AT, time.monotonic_ns(), i, MAGIC)
            pkts = packetizer.packetize(au, i * (CLOCK // fps))
            conn.w.write(b"".join([b for p in pkts for b in (frame_header(0, len(p)), p)]))
            await conn.w.drain()
            i += 1
    finally:
        drain.cancel()
        conn.close()


async def publish_many(host: str, port: int, paths: list[str]) -> None:
    await asyncio.gather(*(publish(host, port, p) for p in paths))


def _control_url(url: str, sdp_text: str) -> str:
    """The video media's control URL (absolute, or relative to the base URL)."""
    in_video = False
    for line in sdp_text.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=control:"):
            ctl = line[len("a=control:"):].strip()
            if ctl.startswith("rtsp://"):
                return ctl
            return url if ctl == "*" else f"{url.rstrip('/')}/{ctl}"
    return url


async def play(host: str, port: int, path: str,
               on_au: Callable[[AccessUnit, int], bool], t_describe: list[int] | None = None) -> None:
    """Play over RTSP/TCP; call ``on_au(au, receive_ns)`` per access unit until
    it returns True. ``t_describe`` receives the time DESCRIBE was sent."""
    conn = await RtspConn.open(host, port)
    url = f"rtsp://{host}:{port}{path}"
    try:
        if t_describe is not None:
            t_describe.append(time.monotonic_ns())
        desc = await conn.request("DESCRIBE", url, "Accept: application/sdp\r\n")
        track = _control_url(url, desc.body.decode())
        await conn.request("SETUP", track, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        depack = H264Depacketizer()
        done = False

        def frame(ev: InterleavedFrame, now: int) -> None:
            nonlocal done
            if ev.channel != 0 or done:
                return
            for au in depack.push(RtpPacket.parse(ev.payload)):
                if on_au(au, now):
                    done = True
                    return

        conn.on_frame = frame
        await conn.request("PLAY", url, "Range: npt=0.000-\r\n")
        conn.dispatch(time.monotonic_ns())  # frames that came with the PLAY response
        while not done:
            await conn.pump()
    finally:
        conn.close()
