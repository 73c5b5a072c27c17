"""The engine against real aiortc peers on loopback: WHEP play, WHIP publish,
consent timeout. aiortc is the peer here, never the thing under test."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from typing import Any

import pytest

from hub.media.h264 import NAL_IDR, NAL_SPS
from hub.media.access_unit import avcc_split
from hub.media.rtp import RtpPacket
from hub.media.rtp_h264 import H264Depacketizer
from hub.media.webrtc.answer import whep_answer, whip_answer
from hub.media.webrtc.mux import WebRtcMux
from hub.media.webrtc.offer import parse_offer
from hub.media.webrtc.peer import PeerClosed, PeerConnected, RtpReceived, WebRtcPeer
from hub.media.webrtc.stream_out import WebRtcStreamOut

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from webrtc_glue import UdpGlue, h264_access_units, h264_desc, local_params, make_peer

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiortc's ICE gathers every interface but loopback; keep it on 127.0.0.1."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return h264_access_units(tmp_path_factory.mktemp("h264"), frames=75)


def _client() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def _wait_event(glue: UdpGlue, kind: type, peer: WebRtcPeer, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {kind.__name__} for the peer")
        e = await asyncio.wait_for(glue.events.get(), left)
        if isinstance(e, kind) and e.peer is peer:
            return e


async def _whep_client(glue: UdpGlue, mux: WebRtcMux, out: WebRtcStreamOut,
                       desc_tracks: list[Any]) -> tuple[RTCPeerConnection, WebRtcPeer]:
    pc = _client()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    offer = parse_offer(pc.localDescription.sdp)
    local = local_params(glue.port)
    answer = whep_answer(offer, desc_tracks, out.ssrcs, local)
    peer = make_peer(offer, local, send=answer.send_tracks, source=out)
    mux.add(peer)
    await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
    return pc, peer


async def _feed(glue: UdpGlue, out: WebRtcStreamOut, peers: list[WebRtcPeer], units: list[bytes]) -> int:
    """Packetise each access unit once, protect per peer, 25 fps."""
    sent = 0
    for i, au in enumerate(units):
        keyframe = any(n[0] & 0x1F == NAL_IDR for n in avcc_split(au))
        pkts = out.packetize(0, au, i * 3600, keyframe=keyframe, now=time.time())
        for p in peers:
            glue.send(p.send_rtp(0, pkts))
        sent += len(pkts)
        await asyncio.sleep(0.04)
    return sent


async def _frames(pc: RTCPeerConnection, count: int) -> list[Any]:
    track = pc.getTransceivers()[0].receiver.track
    return [await asyncio.wait_for(track.recv(), 10) for _ in range(count)]


def test_fresh_aiortc_offer_is_answered() -> None:
    """aiortc's offer as it makes it now (not the captured fixture)."""
    async def run() -> None:
        pc = _client()
        try:
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            text = pc.localDescription.sdp
            offer = parse_offer(text)
            h264 = {c.payload_type: c.params.get("profile-level-id") for c in offer.media[0].codecs
                    if c.name == "H264" and c.params.get("packetization-mode") == "1"}
            assert "42e01f" in h264.values()
            desc = h264_desc([bytes.fromhex("000000046742c01e 0000000468ce3c80")])
            answer = whep_answer(offer, desc.tracks, {0: 7}, local_params(9))
            (sent,) = answer.send_tracks
            assert h264[sent.payload_type] == "42e01f" and sent.mid == offer.media[0].mid
            assert f"a=group:BUNDLE {sent.mid}\r\n" in answer.sdp
            assert f"a=mid:{offer.media[1].mid}\r\na=inactive\r\n" in answer.sdp  # no audio in the stream
        finally:
            await pc.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_whep_two_aiortc_players_share_one_packetization(units: list[bytes]) -> None:
    async def run() -> None:
        mux = WebRtcMux()
        glue = await UdpGlue.start(mux)
        desc = h264_desc(units)
        out = WebRtcStreamOut(desc)
        clients: list[RTCPeerConnection] = []
        try:
            pairs = [await _whep_client(glue, mux, out, desc.tracks) for _ in range(2)]
            clients = [pc for pc, _ in pairs]
            peers = [p for _, p in pairs]
            for p in peers:
                await _wait_event(glue, PeerConnected, p)
            assert len({p.selected for p in peers}) == 2  # two client sockets, one server port
            feeder = asyncio.ensure_future(_feed(glue, out, peers, units))
            got = await asyncio.gather(*(_frames(pc, 20) for pc in clients))
            sent = await feeder
            assert out.units == len(units)  # one packetisation per access unit, two players
            for frames in got:
                assert {(f.width, f.height) for f in frames} == {(320, 240)}
                pts = [f.pts for f in frames]
                assert all(b > a for a, b in zip(pts, pts[1:]))
                assert frames[0].time_base == Fraction(1, 90000)
            for p in peers:
                assert p.srtp is not None and p.srtp.profile.openssl_name == b"SRTP_AEAD_AES_128_GCM"
                assert p.stats.rtp_out == sent
                assert p.stats.stun_ok >= 1 and p.stats.dropped == 0
        finally:
            for pc in clients:
                await pc.close()
            await glue.close()

    asyncio.run(asyncio.wait_for(run(), 60))


def test_whep_peer_that_goes_silent_is_reaped(units: list[bytes]) -> None:
    async def run() -> None:
        mux = WebRtcMux()
        glue = await UdpGlue.start(mux, tick=0.1)
        desc = h264_desc(units)
        out = WebRtcStreamOut(desc)
        pc = _client()
        try:
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            offer = parse_offer(pc.localDescription.sdp)
            local = local_params(glue.port)
            answer = whep_answer(offer, desc.tracks, out.ssrcs, local)
            peer = make_peer(offer, local, send=answer.send_tracks, source=out, consent_timeout=1.5)
            mux.add(peer)
            await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
            await _wait_event(glue, PeerConnected, peer)
            # The client vanishes without a word: its ICE stops, nothing is sent.
            ice = pc.getTransceivers()[0].sender.transport.transport
            await ice.stop()
            closed = await _wait_event(glue, PeerClosed, peer, timeout=5)
            assert closed.reason == "consent expired"
            assert peer.creds.local_ufrag not in mux.by_ufrag and peer not in mux.by_addr.values()
        finally:
            await pc.close()
            await glue.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_whip_aiortc_publisher_h264_reaches_the_depacketizer() -> None:
    from aiortc import RTCRtpSender
    from aiortc.mediastreams import VideoStreamTrack

    async def run() -> None:
        mux = WebRtcMux()
        glue = await UdpGlue.start(mux)
        pc = _client()
        try:
            transceiver = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
            h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
            transceiver.setCodecPreferences(h264)
            await pc.setLocalDescription(await pc.createOffer())
            offer = parse_offer(pc.localDescription.sdp)
            local = local_params(glue.port)
            answer = whip_answer(offer, local)
            assert [(r.kind, r.codec, r.clock_rate) for r in answer.recv_tracks] == [("video", "H264", 90000)]
            peer = make_peer(offer, local, recv=answer.recv_tracks)
            mux.add(peer)
            await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
            depack = H264Depacketizer()
            units = []
            deadline = time.monotonic() + 20
            while len(units) < 10:
                e = await asyncio.wait_for(glue.events.get(), deadline - time.monotonic())
                if isinstance(e, RtpReceived) and e.peer is peer:
                    assert e.track.payload_type == answer.recv_tracks[0].payload_type
                    units += depack.push(RtpPacket.parse(e.packet))
            assert units[0].keyframe
            types = [n[0] & 0x1F for n in avcc_split(units[0].data)]
            assert NAL_SPS in types and NAL_IDR in types
            assert all(b.pts > a.pts for a, b in zip(units, units[1:]))
            # A PLI goes back to the publisher once it has sent RTP.
            assert peer.request_keyframe(0)
        finally:
            await pc.close()
            await glue.close()

    asyncio.run(asyncio.wait_for(run(), 60))
