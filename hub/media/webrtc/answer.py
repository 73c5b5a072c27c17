"""SDP answers for WHEP (we send) and WHIP (we receive).

Every answer is ICE-lite (``a=ice-lite``), DTLS server (``a=setup:passive``),
BUNDLEd with rtcp-mux, and lists one host candidate per configured address,
all on the one UDP port. Payload types are the offerer's: the shared packets
of a stream carry one number per track, and a peer that negotiated another
gets a one-byte rewrite (see :meth:`WebRtcPeer.send_rtp`).

WHEP: the stream's video track goes into the first video section the offer
lets us send on (recvonly or sendrecv), its Opus/PCMA/PCMU audio into the
first audio section. AAC has no WebRTC payload: the audio section is
rejected and the player gets video only (transcoding is out of scope).
WHIP: the first video section the publisher sends H.264 on and the first
audio section with Opus (or G.711) are accepted, recvonly.
Sections we do not use are rejected (port 0) and left out of the BUNDLE.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from hub.errors import BadRequest
from hub.media.sdp import Sdp, SdpMedia
from hub.media.stream_desc import TrackDesc

from .codec_match import WEBRTC_AUDIO, choose_audio, choose_video
from .offer import OfferCodec, OfferMedia, WebRtcOffer
from .peer import RecvTrack, SendTrack

__all__ = ["IceCandidate", "LocalParams", "Answer", "whep_answer", "whip_answer", "candidate_line"]

#: rtcp-fb values we honour when the offer has them (NACK from the
#: retransmission buffer, PLI/FIR noted).
_SEND_FEEDBACK = ("nack", "nack pli", "ccm fir")
#: The only feedback we send as a receiver (PLI to a publisher).
_RECV_FEEDBACK = ("nack pli",)


@dataclass(frozen=True, slots=True)
class IceCandidate:
    host: str
    port: int


def candidate_line(index: int, cand: IceCandidate) -> str:
    """``a=candidate`` value: host type, UDP, priority by configured order (RFC 8445 5.1.2.1)."""
    priority = (126 << 24) | ((65535 - index) << 8) | 255
    return f"{index + 1} 1 udp {priority} {cand.host} {cand.port} typ host"


@dataclass(frozen=True, slots=True)
class LocalParams:
    """Our side of one session: ICE credentials, certificate fingerprint, candidates."""

    ice_ufrag: str
    ice_pwd: str
    fingerprint: str  # sha-256, AB:CD:...
    candidates: tuple[IceCandidate, ...]
    origin_id: int = 0
    cname: str = "hub"


@dataclass(slots=True)
class Answer:
    sdp: str
    send_tracks: list[SendTrack] = field(default_factory=list)
    recv_tracks: list[RecvTrack] = field(default_factory=list)


def _session(local: LocalParams, mids: list[str]) -> Sdp:
    sdp = Sdp(origin=f"- {local.origin_id} 1 IN IP4 0.0.0.0", session_name="-", timing="0 0")
    if mids:
        sdp.attributes.append(("group", "BUNDLE " + " ".join(mids)))
    sdp.attributes.append(("ice-lite", None))
    return sdp


def _rejected(m: OfferMedia, local: LocalParams) -> SdpMedia:
    """A section we do not use: port 0, inactive. It still carries the
    transport attributes and the rtpmap of its format, as browsers' own
    answers do: some peers (aiortc) refuse an answer with any audio/video
    section lacking ICE credentials, a DTLS role, rtcp-mux or a codec."""
    section = SdpMedia(m.kind, 0, m.proto, [m.first_format or "0"])
    section.connection = "IN IP4 0.0.0.0"
    section.attributes = [("mid", m.mid), ("inactive", None), ("ice-ufrag", local.ice_ufrag),
                          ("ice-pwd", local.ice_pwd), ("fingerprint", f"sha-256 {local.fingerprint}"),
                          ("setup", "passive")]
    if m.kind in ("audio", "video"):
        section.attributes.append(("rtcp-mux", None))
        first = next((c for c in m.codecs if str(c.payload_type) == m.first_format), None)
        if first is not None and m.is_rtp:
            section.attributes.append(("rtpmap", _rtpmap(first, m.kind)))
    return section


def _rtpmap(codec: OfferCodec, kind: str) -> str:
    rtpmap = f"{codec.payload_type} {codec.name if codec.name != 'OPUS' else 'opus'}/{codec.clock_rate}"
    if codec.channels and kind == "audio":
        rtpmap += f"/{codec.channels}"
    return rtpmap


def _accepted(m: OfferMedia, codec: OfferCodec, direction: str, local: LocalParams,
              feedback: tuple[str, ...]) -> SdpMedia:
    if not local.candidates:
        raise ValueError("an answer needs at least one candidate")
    first = local.candidates[0]
    family = "IP6" if ipaddress.ip_address(first.host).version == 6 else "IP4"
    section = SdpMedia(m.kind, first.port, m.proto, [str(codec.payload_type)])
    section.connection = f"IN {family} {first.host}"
    pt = codec.payload_type
    a = section.attributes
    a += [("mid", m.mid), (direction, None), ("ice-ufrag", local.ice_ufrag),
          ("ice-pwd", local.ice_pwd), ("fingerprint", f"sha-256 {local.fingerprint}"),
          ("setup", "passive"), ("rtcp-mux", None)]
    a.append(("rtpmap", _rtpmap(codec, m.kind)))
    a += [("rtcp-fb", f"{pt} {f}") for f in feedback if f in codec.rtcp_fb]
    if codec.fmtp:
        a.append(("fmtp", f"{pt} {codec.fmtp}"))
    return section


def _add_candidates(section: SdpMedia, local: LocalParams) -> None:
    section.attributes += [("candidate", candidate_line(i, c)) for i, c in enumerate(local.candidates)]
    section.attributes.append(("end-of-candidates", None))


def whep_answer(offer: WebRtcOffer, tracks: list[TrackDesc], ssrcs: dict[int, int],
                local: LocalParams) -> Answer:
    """Answer a player's offer with the stream's tracks (``ssrcs``: track -> our SSRC)."""
    video = next((t for t in tracks if t.kind == "video" and t.codec in ("H264", "H265")), None)
    audio = next((t for t in tracks if t.kind == "audio" and t.codec.upper() in WEBRTC_AUDIO), None)
    sections: list[SdpMedia] = []
    send: list[SendTrack] = []
    for m in offer.media:
        track = video if m.kind == "video" else audio if m.kind == "audio" else None
        codec: OfferCodec | None = None
        if track is not None and m.is_rtp and m.direction in ("recvonly", "sendrecv") \
                and all(s.track != track.index for s in send):
            codec = choose_video(m.codecs, track) if m.kind == "video" else choose_audio(m.codecs, track)
        if codec is None or track is None:
            sections.append(_rejected(m, local))
            continue
        section = _accepted(m, codec, "sendonly", local, _SEND_FEEDBACK)
        ssrc = ssrcs[track.index]
        section.attributes.append(("msid", f"{local.cname} {m.kind}{track.index}"))
        section.attributes.append(("ssrc", f"{ssrc} cname:{local.cname}"))
        _add_candidates(section, local)
        sections.append(section)
        send.append(SendTrack(track.index, m.mid, m.kind, track.codec.upper(), codec.payload_type,
                              codec.clock_rate, ssrc))
    if not send:
        codecs = ", ".join(t.codec for t in tracks) or "no tracks"
        raise BadRequest(f"no codec in common: the offer takes none of the stream's ({codecs})")
    sdp = _session(local, [s.mid for s in send])
    sdp.media = sections
    return Answer(str(sdp), send_tracks=send)


def _whip_codec(m: OfferMedia) -> OfferCodec | None:
    if m.kind == "video":
        return next((c for c in m.codecs if c.name == "H264" and c.clock_rate == 90000
                     and c.params.get("packetization-mode") == "1"), None)
    if m.kind == "audio":
        for name, rate in WEBRTC_AUDIO.items():
            found = next((c for c in m.codecs if c.name == name and c.clock_rate == rate), None)
            if found is not None:
                return found
    return None


def whip_answer(offer: WebRtcOffer, local: LocalParams) -> Answer:
    """Answer a publisher's offer: one H.264 video and one Opus/G.711 audio track."""
    sections: list[SdpMedia] = []
    recv: list[RecvTrack] = []
    for m in offer.media:
        codec = None
        if m.is_rtp and m.direction in ("sendonly", "sendrecv") and all(r.kind != m.kind for r in recv):
            codec = _whip_codec(m)
        if codec is None:
            sections.append(_rejected(m, local))
            continue
        section = _accepted(m, codec, "recvonly", local, _RECV_FEEDBACK)
        _add_candidates(section, local)
        sections.append(section)
        recv.append(RecvTrack(len(recv), m.mid, m.kind, codec.name, codec.payload_type,
                              codec.clock_rate, codec.channels, codec.fmtp))
    if not recv:
        raise BadRequest("the offer sends neither H.264 video nor Opus/G.711 audio")
    sdp = _session(local, [r.mid for r in recv])
    sdp.media = sections
    return Answer(str(sdp), recv_tracks=recv)
