"""Real WebRTC peers for the end-to-end tests: aiortc as a WHEP player and a
WHIP publisher, talking to the server over plain HTTP (one connection per
request, so the kernel spreads them over the fronts)."""

from __future__ import annotations

import asyncio
import http.client as httpc
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def http(method: str, url: str, body: bytes | str = b"", headers: dict[str, str] | None = None,
         timeout: float = 10.0, source: str | None = None) -> Reply:
    """One request on a fresh connection (from the address `source`, if
    given); headers of the reply in lower case."""
    u = urlsplit(url)
    conn = httpc.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=timeout,
                                source_address=(source, 0) if source else None)
    try:
        target = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, target, body.encode() if isinstance(body, str) else body, headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


async def ahttp(method: str, url: str, body: bytes | str = b"", headers: dict[str, str] | None = None) -> Reply:
    return await asyncio.to_thread(http, method, url, body, headers)


def sdp_headers(token: str | None = None, ctype: str = "application/sdp") -> dict[str, str]:
    h = {"Content-Type": ctype}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


def client() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


@dataclass
class Player:
    """A WHEP player: its peer connection and the server's reply."""

    pc: RTCPeerConnection
    reply: Reply
    base: str
    frames: list[Any] = field(default_factory=list)

    @property
    def location(self) -> str:
        return self.base + self.reply.headers["location"]

    async def video_frames(self, count: int, timeout: float = 15.0) -> list[Any]:
        track = next(t.receiver.track for t in self.pc.getTransceivers() if t.kind == "video")
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            self.frames.append(await asyncio.wait_for(track.recv(), max(0.1, deadline - time.monotonic())))
        return self.frames

    async def close(self) -> None:
        await self.pc.close()


async def whep(base: str, path: str, token: str | None = None, audio: bool = True) -> Player:
    """POST a recvonly offer (video and audio) to PATH's WHEP endpoint; on 201
    the answer is applied. The reply is kept whatever its status."""
    pc = client()
    pc.addTransceiver("video", direction="recvonly")
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    reply = await ahttp("POST", f"{base}/streams{path}/whep", pc.localDescription.sdp, sdp_headers(token))
    if reply.status == 201:
        await pc.setRemoteDescription(RTCSessionDescription(reply.text, "answer"))
    return Player(pc, reply, base)


@dataclass
class Publisher:
    pc: RTCPeerConnection
    reply: Reply
    base: str

    @property
    def location(self) -> str:
        return self.base + self.reply.headers["location"]

    async def close(self) -> None:
        await self.pc.close()


async def whip(base: str, path: str, token: str | None = None, audio: bool = True) -> Publisher:
    """An aiortc publisher (test pattern video as H.264, a tone as Opus) POSTing
    to PATH's WHIP endpoint; on 201 the answer is applied and media flows."""
    pc = client()
    video = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                               if c.mimeType == "video/H264"])
    if audio:
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    reply = await ahttp("POST", f"{base}/streams{path}/whip", pc.localDescription.sdp, sdp_headers(token))
    if reply.status == 201:
        await pc.setRemoteDescription(RTCSessionDescription(reply.text, "answer"))
    return Publisher(pc, reply, base)
