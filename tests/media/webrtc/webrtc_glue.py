"""Test-only asyncio glue around the sans-IO WebRTC engine, and media helpers.

The front will have its own glue (phase 2); this one is the smallest thing
that serves the engine on one loopback UDP port for aiortc peers.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from hub.media.access_unit import annexb_split, avcc_join
from hub.media.stream_desc import StreamDesc, TrackDesc
from hub.media.webrtc.answer import IceCandidate, LocalParams
from hub.media.webrtc.dtls import DtlsCertificate, DtlsServer
from hub.media.webrtc.mux import WebRtcMux
from hub.media.webrtc.offer import WebRtcOffer
from hub.media.webrtc.peer import PeerEvent, RecvTrack, SendTrack, WebRtcPeer
from hub.media.webrtc.stream_out import WebRtcStreamOut

_CERT: DtlsCertificate | None = None


def certificate() -> DtlsCertificate:
    """One certificate per test process, as the front makes one per process."""
    global _CERT
    if _CERT is None:
        _CERT = DtlsCertificate.generate()
    return _CERT


class UdpGlue(asyncio.DatagramProtocol):
    """One UDP socket feeding a WebRtcMux; timers every ``tick`` seconds."""

    def __init__(self, mux: WebRtcMux, tick: float = 0.2) -> None:
        self.mux = mux
        self.tick = tick
        self.transport: asyncio.DatagramTransport | None = None
        self.events: asyncio.Queue[PeerEvent] = asyncio.Queue()
        self._timer: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, mux: WebRtcMux, tick: float = 0.2) -> UdpGlue:
        loop = asyncio.get_running_loop()
        _, glue = await loop.create_datagram_endpoint(lambda: cls(mux, tick), local_addr=("127.0.0.1", 0))
        glue._timer = asyncio.get_running_loop().create_task(glue._run_timers())
        return glue

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.send(self.mux.receive(data, addr, time.monotonic()))
        for e in self.mux.pop_events():
            self.events.put_nowait(e)

    def send(self, datagrams: list[tuple[bytes, tuple[str, int]]]) -> None:
        assert self.transport is not None
        for data, addr in datagrams:
            self.transport.sendto(data, addr)

    async def _run_timers(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.send(self.mux.handle_timer(time.monotonic()))
            for e in self.mux.pop_events():
                self.events.put_nowait(e)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            try:
                await self._timer
            except asyncio.CancelledError:
                pass
        if self.transport is not None:
            self.transport.close()


def local_params(port: int) -> LocalParams:
    return LocalParams(ice_ufrag=secrets.token_hex(4), ice_pwd=secrets.token_hex(16),
                       fingerprint=certificate().fingerprint,
                       candidates=(IceCandidate("127.0.0.1", port),), origin_id=1)


def make_peer(offer: WebRtcOffer, local: LocalParams, *, send: list[SendTrack] | None = None,
              recv: list[RecvTrack] | None = None, source: WebRtcStreamOut | None = None,
              consent_timeout: float = 30.0) -> WebRtcPeer:
    return WebRtcPeer(secrets.token_hex(8), local_ufrag=local.ice_ufrag, local_pwd=local.ice_pwd,
                      remote_ufrag=offer.ice_ufrag, remote_pwd=offer.ice_pwd,
                      dtls=DtlsServer(certificate(), offer.fingerprints),
                      now=time.monotonic(), send_tracks=send, recv_tracks=recv, source=source,
                      consent_timeout=consent_timeout)


PROFILE = "baseline"


def h264_access_units(folder: Path, frames: int = 50, size: str = "320x240") -> list[bytes]:
    """An H.264 stream from ffmpeg (lavfi testsrc2, x264 constrained baseline,
    keyframe every 25 frames), split into AVCC access units."""
    out = folder / "src.h264"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25",
                    "-frames:v", str(frames), "-c:v", "libx264", "-profile:v", PROFILE, "-bf", "0", "-g", "25",
                    "-pix_fmt", "yuv420p", "-x264-params", "aud=1", "-f", "h264", str(out)],
                   check=True, timeout=60)
    units: list[list[memoryview]] = []
    for nal in annexb_split(out.read_bytes()):
        if nal[0] & 0x1F == 9:  # AUD starts an access unit
            units.append([])
        elif units:
            units[-1].append(nal)
    return [avcc_join(u) for u in units if u]


def h264_desc(units: list[bytes], width: int = 320, height: int = 240) -> StreamDesc:
    from hub.media.access_unit import avcc_split

    sps = next(bytes(n) for n in avcc_split(units[0]) if n[0] & 0x1F == 7)
    pps = next(bytes(n) for n in avcc_split(units[0]) if n[0] & 0x1F == 8)
    track = TrackDesc(0, "video", "H264", 96, 90000, sps=sps, pps=pps, width=width, height=height)
    return StreamDesc(1, "/live/test", "ring", 1, "", [track])
