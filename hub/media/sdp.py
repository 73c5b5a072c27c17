"""SDP (RFC 4566): parse and generate session descriptions, plus the fmtp
parameters of the codecs we carry (H.264 RFC 6184, H.265 RFC 7798, AAC
RFC 3640).

Lines we do not model are kept and written back: output follows the RFC's
line order, which is also the order every conforming producer uses, so a
parsed description round-trips byte for byte. Output uses CRLF.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ProtocolError

MAX_SDP = 65536
MAX_MEDIA = 32

# RFC 4566 §5 line order; letters not listed go last in their section.
_SESSION_ORDER = {k: i for i, k in enumerate("vosiuepcbtrzka")}
_MEDIA_ORDER = {k: i for i, k in enumerate("micbka")}

# Static payload types (RFC 3551) that may appear without an rtpmap.
STATIC_PAYLOADS: dict[int, tuple[str, int, int | None]] = {
    0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 4: ("G723", 8000, 1), 8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1), 10: ("L16", 44100, 2), 11: ("L16", 44100, 1), 14: ("MPA", 90000, None),
    26: ("JPEG", 90000, None), 32: ("MPV", 90000, None), 33: ("MP2T", 90000, None),
}



@dataclass
class RtpMap:
    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int | None = None


def _attr(attributes: list[tuple[str, str | None]], name: str) -> str | None:
    for k, v in attributes:
        if k == name:
            return "" if v is None else v
    return None


def _set_attr(attributes: list[tuple[str, str | None]], name: str, value: str | None) -> None:
    for i, (k, _) in enumerate(attributes):
        if k == name:
            attributes[i] = (name, value)
            return
    attributes.append((name, value))


def _int(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise ProtocolError(f"bad SDP {what} {text[:20]!r}")
    return int(text)


@dataclass
class SdpMedia:
    """One `m=` section and the lines under it."""

    media: str = "video"
    port: int = 0
    proto: str = "RTP/AVP"
    formats: list[str] = field(default_factory=lambda: ["96"])
    port_count: int | None = None
    connection: str | None = None
    bandwidth: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i=, k=, unknown

    @classmethod
    def from_m_line(cls, value: str) -> SdpMedia:
        parts = value.split()
        if len(parts) < 3:
            raise ProtocolError(f"malformed m= line {value[:60]!r}")
        port, slash, count = parts[1].partition("/")
        return cls(parts[0], _int(port, "port"), parts[2], parts[3:],
                   _int(count, "port count") if slash else None)

    def attribute(self, name: str) -> str | None:
        """First `a=name[:value]`: its value, "" for a flag, None if absent."""
        return _attr(self.attributes, name)

    def set_attribute(self, name: str, value: str | None = None) -> None:
        _set_attr(self.attributes, name, value)

    @property
    def payload_type(self) -> int:
        if not self.formats:
            raise ProtocolError("m= line without formats")
        pt = _int(self.formats[0], "payload type")
        if pt > 127:
            raise ProtocolError(f"payload type {pt} out of range")
        return pt

    @property
    def rtpmap(self) -> RtpMap | None:
        """The rtpmap of the first format (static table as fallback)."""
        pt = self.payload_type
        for k, v in self.attributes:
            if k != "rtpmap" or not v:
                continue
            num, _, rest = v.strip().partition(" ")
            if num != str(pt):
                continue
            fields = rest.strip().split("/")
            if len(fields) < 2 or not fields[0]:
                raise ProtocolError(f"malformed rtpmap {v[:60]!r}")
            channels = _int(fields[2], "channels") if len(fields) > 2 and fields[2] else None
            return RtpMap(pt, fields[0], _int(fields[1], "clock rate"), channels)
        static = STATIC_PAYLOADS.get(pt)
        return RtpMap(pt, *static) if static else None

    @property
    def encoding_name(self) -> str | None:
        rtpmap = self.rtpmap
        return rtpmap.encoding_name if rtpmap else None

    @property
    def clock_rate(self) -> int | None:
        rtpmap = self.rtpmap
        return rtpmap.clock_rate if rtpmap else None

    @property
    def channels(self) -> int | None:
        rtpmap = self.rtpmap
        return rtpmap.channels if rtpmap else None

    @property
    def fmtp(self) -> dict[str, str]:
        """The first format's fmtp parameters, keys lower-cased, in order."""
        pt = str(self.payload_type)
        for k, v in self.attributes:
            if k == "fmtp" and v:
                num, _, rest = v.strip().partition(" ")
                if num == pt:
                    return parse_fmtp(rest)
        return {}

    @property
    def control(self) -> str | None:
        return self.attribute("control")

    def lines(self) -> list[tuple[str, str]]:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        out: list[tuple[str, str]] = [("m", " ".join([self.media, port, self.proto, *self.formats]))]
        if self.connection is not None:
            out.append(("c", self.connection))
        out += [("b", b) for b in self.bandwidth]
        out += [("a", k if v is None else f"{k}:{v}") for k, v in self.attributes]
        out += self.extra
        out.sort(key=lambda kv: _MEDIA_ORDER.get(kv[0], len(_MEDIA_ORDER)))
        return out


@dataclass
class Sdp:
    """A session description: session-level lines and media sections."""

    version: int = 0
    origin: str = "- 0 0 IN IP4 127.0.0.1"
    session_name: str = "Stream"
    connection: str | None = None
    timing: str = "0 0"
    bandwidth: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i= u= e= p= r= z= k=, unknown
    media: list[SdpMedia] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | bytes) -> Sdp:
        """Parse SDP; tolerant of LF endings and blank lines, strict about
        line shape (`x=value`) and the numbers it reads."""
        if isinstance(text, bytes):
            if len(text) > MAX_SDP:
                raise ProtocolError("SDP too large")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError("SDP is not UTF-8") from exc
        if len(text) > MAX_SDP:
            raise ProtocolError("SDP too large")
        sdp = cls(origin="", session_name="", timing="")
        seen_v = False
        current: SdpMedia | None = None
        for raw in text.split("\n"):
            line = raw.removesuffix("\r")
            if not line.strip():
                continue
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise ProtocolError(f"malformed SDP line {line[:60]!r}")
            kind, value = line[0], line[2:]
            if kind == "m":
                if len(sdp.media) >= MAX_MEDIA:
                    raise ProtocolError("too many SDP media sections")
                current = SdpMedia.from_m_line(value)
                sdp.media.append(current)
            elif current is not None:
                _media_line(current, kind, value)
            elif kind == "v":
                sdp.version = _int(value.strip(), "version")
                seen_v = True
            elif kind == "o":
                sdp.origin = value
            elif kind == "s":
                sdp.session_name = value
            elif kind == "c":
                sdp.connection = value
            elif kind == "t":
                sdp.timing = value
            elif kind == "b":
                sdp.bandwidth.append(value)
            elif kind == "a":
                sdp.attributes.append(_split_attribute(value))
            else:
                sdp.extra.append((kind, value))
        if not seen_v and not sdp.media:
            raise ProtocolError("not an SDP description")
        return sdp

    def attribute(self, name: str) -> str | None:
        return _attr(self.attributes, name)

    def set_attribute(self, name: str, value: str | None = None) -> None:
        _set_attr(self.attributes, name, value)

    @property
    def control(self) -> str | None:
        return self.attribute("control")

    @property
    def range(self) -> str | None:
        return self.attribute("range")

    def lines(self) -> list[tuple[str, str]]:
        head: list[tuple[str, str]] = [("v", str(self.version))]
        if self.origin:
            head.append(("o", self.origin))
        head.append(("s", self.session_name or "-"))  # s= is mandatory
        if self.connection is not None:
            head.append(("c", self.connection))
        head += [("b", b) for b in self.bandwidth]
        if self.timing:
            head.append(("t", self.timing))
        head += [("a", k if v is None else f"{k}:{v}") for k, v in self.attributes]
        head += self.extra
        head.sort(key=lambda kv: _SESSION_ORDER.get(kv[0], len(_SESSION_ORDER)))
        for m in self.media:
            head += m.lines()
        return head

    def __str__(self) -> str:
        return "".join(f"{k}={v}\r\n" for k, v in self.lines())

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")


#: The session lines of the SDP players get (`hub.shard.sdp_tracks`): an
#: origin and a connection with no address of ours, IPv4's by default.
PLAYER_ORIGIN = "- 0 0 IN IP4 127.0.0.1"
PLAYER_CONNECTION = "IN IP4 0.0.0.0"
_PLAYER_LINES_V6 = ((f"o={PLAYER_ORIGIN}\r\n", "o=- 0 0 IN IP6 ::1\r\n"),
                    (f"c={PLAYER_CONNECTION}\r\n", "c=IN IP6 ::\r\n"))


def for_ipv6_player(sdp: str) -> str:
    """A player SDP as an IPv6 client gets it: the same with `IN IP6`.
    Clients size their RTP sockets by the connection line's address type
    (GStreamer's rtspsrc binds IPv4 ones for `IN IP4` and cannot then send
    its RTCP to an IPv6 server: UDP over IPv6 failed)."""
    for v4, v6 in _PLAYER_LINES_V6:
        sdp = sdp.replace(v4, v6, 1)
    return sdp


def _split_attribute(value: str) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    return (name, rest if colon else None)


def _media_line(media: SdpMedia, kind: str, value: str) -> None:
    if kind == "c":
        media.connection = value
    elif kind == "b":
        media.bandwidth.append(value)
    elif kind == "a":
        media.attributes.append(_split_attribute(value))
    else:
        media.extra.append((kind, value))


def resolve_control(base_url: str, control: str | None) -> str:
    """The absolute URL of a track: `control` absolute as is, `*` or absent
    is the base itself, anything else is appended to the base with one "/"
    (what FFmpeg, live555 and gortsplib do, rather than RFC 3986 merging,
    which would drop the stream name of a base without trailing slash)."""
    if control is None or control in ("", "*"):
        return base_url
    if "://" in control[:16]:
        return control
    if base_url.endswith("/") or control.startswith("/"):
        return base_url.rstrip("/") + "/" + control.lstrip("/")
    return f"{base_url}/{control}"


# -- fmtp ------------------------------------------------------------------

def parse_fmtp(text: str) -> dict[str, str]:
    """`k=v; k2=v2` → {k: v} (keys lower-cased, values may hold "=")."""
    params: dict[str, str] = {}
    for piece in text.split(";"):
        key, eq, value = piece.strip().partition("=")
        if key:
            params[key.strip().lower()] = value.strip() if eq else ""
    return params


def format_fmtp(params: Mapping[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in params.items())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    text = text.strip()
    try:
        # Some cameras drop the padding.
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"bad base64 in {what}") from exc


def h264_fmtp(sps: bytes, pps: bytes, packetization_mode: int = 1) -> str:
    """RFC 6184 fmtp for an SPS/PPS pair (NAL units without start codes)."""
    if len(sps) < 4:
        raise ValueError("SPS too short for profile-level-id")
    return (f"packetization-mode={packetization_mode};profile-level-id={sps[1:4].hex().upper()};"
            f"sprop-parameter-sets={_b64(sps)},{_b64(pps)}")


def h264_parameter_sets(fmtp: Mapping[str, str]) -> tuple[bytes, bytes] | None:
    """(SPS, PPS) from sprop-parameter-sets; None when absent or incomplete
    (the stream's in-band parameter sets then have to do)."""
    value = fmtp.get("sprop-parameter-sets")
    if not value:
        return None
    sps = pps = None
    for part in value.split(","):
        if not part.strip():
            continue
        nal = _unb64(part, "sprop-parameter-sets")
        kind = nal[0] & 0x1F if nal else 0
        if kind == 7 and sps is None:
            sps = nal
        elif kind == 8 and pps is None:
            pps = nal
    if sps is None or pps is None:
        return None
    return sps, pps


def h265_fmtp(vps: bytes, sps: bytes, pps: bytes) -> str:
    """RFC 7798 fmtp for VPS/SPS/PPS."""
    return f"sprop-vps={_b64(vps)};sprop-sps={_b64(sps)};sprop-pps={_b64(pps)}"


def h265_parameter_sets(fmtp: Mapping[str, str]) -> tuple[bytes, bytes, bytes] | None:
    """(VPS, SPS, PPS), first of each list; None when any is absent."""
    out: list[bytes] = []
    for key in ("sprop-vps", "sprop-sps", "sprop-pps"):
        value = fmtp.get(key, "")
        first = value.split(",")[0].strip()
        if not first:
            return None
        out.append(_unb64(first, key))
    return out[0], out[1], out[2]


@dataclass
class AacParams:
    """What an RFC 3640 depayloader needs from the fmtp."""

    config: bytes  # AudioSpecificConfig
    mode: str = "AAC-hbr"
    sizelength: int = 13
    indexlength: int = 3
    indexdeltalength: int = 3


def aac_fmtp(config: bytes) -> str:
    """RFC 3640 AAC-hbr fmtp for an AudioSpecificConfig."""
    return ("streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;"
            f"indexdeltalength=3;config={config.hex().upper()}")


def aac_params(fmtp: Mapping[str, str]) -> AacParams:
    """Parse an MPEG4-GENERIC fmtp; sizes default to AAC-hbr's 13/3/3."""
    config_hex = fmtp.get("config", "").strip()
    try:
        config = bytes.fromhex(config_hex)
    except ValueError as exc:
        raise ProtocolError("bad AAC config hex") from exc
    if not config:
        raise ProtocolError("AAC fmtp without config")
    mode = fmtp.get("mode", "AAC-hbr")
    hbr = mode.lower() == "aac-hbr"

    def size(key: str, default: int) -> int:
        value = fmtp.get(key)
        if value is None:
            return default if hbr else 0
        n = _int(value.strip(), key)
        if n > 32:
            raise ProtocolError(f"AAC {key} {n} out of range")
        return n

    return AacParams(config, mode, size("sizelength", 13), size("indexlength", 3),
                     size("indexdeltalength", 3))
