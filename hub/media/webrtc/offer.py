"""A WebRTC SDP offer (JSEP, RFC 8829) as WHEP players and WHIP publishers send it.

Only what answering needs is read: ICE credentials, the DTLS fingerprint and
role, BUNDLE, and per media section its mid, direction, rtcp-mux and codecs
(rtpmap, fmtp, rtcp-fb). An offer we cannot answer raises ProtocolError
(BadRequest for a well-formed but unusable one), which becomes a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hub.errors import BadRequest, ProtocolError
from hub.media.sdp import STATIC_PAYLOADS, Sdp, SdpMedia, parse_fmtp

__all__ = ["OfferCodec", "OfferMedia", "WebRtcOffer", "parse_offer", "RTP_PROTOS"]

RTP_PROTOS = ("UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP")
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]+")
_FINGERPRINT = re.compile(r"([A-Za-z0-9-]+) ((?:[0-9A-Fa-f]{2}:)+[0-9A-Fa-f]{2})")
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
#: Most codecs read from one media section (Chrome offers ~25 video ones).
MAX_CODECS = 64


@dataclass(slots=True)
class OfferCodec:
    payload_type: int
    name: str            # upper case: H264, H265, OPUS, PCMA, RTX...
    clock_rate: int
    channels: int = 0
    fmtp: str = ""       # the a=fmtp text after the payload type, as offered
    rtcp_fb: list[str] = field(default_factory=list)

    @property
    def params(self) -> dict[str, str]:
        return parse_fmtp(self.fmtp) if self.fmtp else {}


@dataclass(slots=True)
class OfferMedia:
    index: int
    kind: str            # audio, video, application...
    proto: str
    port: int
    mid: str
    direction: str
    rtcp_mux: bool
    codecs: list[OfferCodec] = field(default_factory=list)
    first_format: str = ""

    @property
    def is_rtp(self) -> bool:
        return self.kind in ("audio", "video") and self.proto in RTP_PROTOS and self.port != 0


@dataclass(slots=True)
class WebRtcOffer:
    ice_ufrag: str
    ice_pwd: str
    fingerprints: list[tuple[str, str]]
    setup: str
    bundle: list[str]
    media: list[OfferMedia]


def _need(section: SdpMedia, sdp: Sdp, name: str) -> str | None:
    value = section.attribute(name)
    return value if value is not None else sdp.attribute(name)


def _codecs(section: SdpMedia) -> list[OfferCodec]:
    codecs: dict[int, OfferCodec] = {}
    order: list[int] = []
    for fmt in section.formats[:MAX_CODECS]:
        if not fmt.isascii() or not fmt.isdigit() or int(fmt) > 127:
            raise ProtocolError(f"SDP: bad payload type {fmt[:10]!r}")
        order.append(int(fmt))
    for k, v in section.attributes:
        if k not in ("rtpmap", "fmtp", "rtcp-fb") or not v:
            continue
        num, _, rest = v.strip().partition(" ")
        if not num.isascii() or not num.isdigit() or len(num) > 3 or int(num) not in order:
            continue  # "*" rtcp-fb wildcards and strays are ignored
        pt = int(num)
        if k == "rtpmap":
            parts = rest.strip().split("/")
            if len(parts) < 2 or not parts[0] or not parts[1].isascii() or not parts[1].isdigit():
                raise ProtocolError(f"SDP: malformed rtpmap {v[:60]!r}")
            ch = parts[2] if len(parts) > 2 else ""
            if ch and (not ch.isascii() or not ch.isdigit() or len(ch) > 3):
                raise ProtocolError(f"SDP: malformed rtpmap {v[:60]!r}")
            prev = codecs.get(pt)
            codecs[pt] = OfferCodec(pt, parts[0].upper(), int(parts[1][:10]), int(ch) if ch else 0,
                                    prev.fmtp if prev else "", prev.rtcp_fb if prev else [])
        else:
            codec = codecs.setdefault(pt, OfferCodec(pt, "", 0))
            if k == "fmtp":
                codec.fmtp = rest.strip()
            elif len(codec.rtcp_fb) < 16:
                codec.rtcp_fb.append(" ".join(rest.split()))
    out: list[OfferCodec] = []
    for pt in order:
        found = codecs.get(pt)
        if found is None or not found.name:
            static = STATIC_PAYLOADS.get(pt)
            if static is None:
                continue  # dynamic type without rtpmap: unusable, skip
            found = OfferCodec(pt, static[0], static[1], static[2] or 0, found.fmtp if found else "",
                               found.rtcp_fb if found else [])
        out.append(found)
    return out


def parse_offer(text: str | bytes) -> WebRtcOffer:
    """Read a JSEP offer; ProtocolError/BadRequest when it cannot be answered."""
    sdp = Sdp.parse(text)
    if not sdp.media:
        raise BadRequest("SDP offer has no media section")
    group = sdp.attribute("group") or ""
    bundle = group.split()[1:] if group.split()[:1] == ["BUNDLE"] else []
    media: list[OfferMedia] = []
    creds: tuple[str, str] | None = None
    fingerprints: list[tuple[str, str]] = []
    setup = ""
    for i, section in enumerate(sdp.media):
        mid = section.attribute("mid")
        if mid is None:
            if len(sdp.media) > 1:
                raise BadRequest(f"SDP media section {i} has no a=mid")
            mid = "0"
        if not mid or len(mid) > 32 or not mid.isascii() or not mid.isprintable() or " " in mid:
            raise ProtocolError(f"SDP: bad a=mid {mid[:40]!r}")
        if any(m.mid == mid for m in media):
            raise ProtocolError(f"SDP: a=mid:{mid} used twice")
        direction = next((d for d in _DIRECTIONS if section.attribute(d) is not None), "sendrecv")
        m = OfferMedia(i, section.media, section.proto, section.port, mid, direction,
                       section.attribute("rtcp-mux") is not None,
                       first_format=section.formats[0] if section.formats else "")
        media.append(m)
        if not m.is_rtp:
            continue
        m.codecs = _codecs(section)
        ufrag, pwd = _need(section, sdp, "ice-ufrag"), _need(section, sdp, "ice-pwd")
        if ufrag is None or pwd is None:
            raise BadRequest("SDP offer without a=ice-ufrag / a=ice-pwd")
        if not (4 <= len(ufrag) <= 256 and _ICE_CHARS.fullmatch(ufrag)):
            raise ProtocolError("SDP: bad a=ice-ufrag")
        if not (22 <= len(pwd) <= 256 and _ICE_CHARS.fullmatch(pwd)):
            raise ProtocolError("SDP: bad a=ice-pwd")
        if creds is None:
            creds = (ufrag, pwd)
        elif creds != (ufrag, pwd):
            raise BadRequest("SDP: bundled media sections with different ICE credentials")
        if not fingerprints:
            values = [v for k, v in section.attributes if k == "fingerprint" and v] or \
                     [v for k, v in sdp.attributes if k == "fingerprint" and v]
            for v in values[:4]:
                found = _FINGERPRINT.fullmatch(v.strip())
                if found is None:
                    raise ProtocolError(f"SDP: malformed a=fingerprint {v[:60]!r}")
                fingerprints.append((found.group(1).lower(), found.group(2).upper()))
        setup = setup or (_need(section, sdp, "setup") or "")
        if not m.rtcp_mux:
            raise BadRequest(f"SDP media section {mid} without a=rtcp-mux")
    if creds is None:
        raise BadRequest("SDP offer has no audio or video section over UDP/TLS/RTP/SAVPF")
    if not fingerprints:
        raise BadRequest("SDP offer without a=fingerprint")
    if setup not in ("actpass", "active"):
        raise BadRequest(f"SDP offer with a=setup:{setup[:20] or '(none)'}: we are the DTLS server")
    rtp_mids = [m.mid for m in media if m.is_rtp]
    if len(rtp_mids) > 1 and not set(rtp_mids) <= set(bundle):
        raise BadRequest("SDP offer with several media sections must BUNDLE them")
    return WebRtcOffer(creds[0], creds[1], fingerprints, setup, bundle, media)
