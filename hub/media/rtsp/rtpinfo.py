"""The RTP-Info header (RFC 2326 §12.33): what PLAY starts each track at.

`url=rtsp://h/s/trackID=0;seq=123;rtptime=456,url=...`. The URL is not
quoted and may in theory hold a comma, so a piece that does not start a new
`url=` entry is glued back onto the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ProtocolError
from ._params import parse_int


@dataclass
class RtpInfoEntry:
    url: str
    seq: int | None = None
    rtptime: int | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> RtpInfoEntry:
        url: str | None = None
        entry = cls("")
        for param in text.split(";"):
            name, eq, value = param.strip().partition("=")
            key = name.lower()
            if not name:
                continue
            if key == "url" and url is None:
                url = value
            elif key == "seq":
                entry.seq = parse_int(value.strip(), "RTP-Info seq", 0xFFFF)
            elif key == "rtptime":
                entry.rtptime = parse_int(value.strip(), "RTP-Info rtptime", 0xFFFFFFFF)
            elif url is not None and not eq:
                url = f"{url};{name}"  # a ";" inside the URL itself
            else:
                entry.extra.append((name, value))
        if not url:
            raise ProtocolError(f"RTP-Info entry without url: {text[:80]!r}")
        entry.url = url
        return entry

    def __str__(self) -> str:
        parts = [f"url={self.url}"]
        if self.seq is not None:
            parts.append(f"seq={self.seq}")
        if self.rtptime is not None:
            parts.append(f"rtptime={self.rtptime}")
        parts.extend(f"{k}={v}" for k, v in self.extra)
        return ";".join(parts)


@dataclass
class RtpInfo:
    entries: list[RtpInfoEntry]

    @classmethod
    def parse(cls, text: str) -> RtpInfo:
        pieces: list[str] = []
        for piece in text.split(","):
            if pieces and not piece.strip().lower().startswith("url="):
                pieces[-1] = f"{pieces[-1]},{piece}"
            else:
                pieces.append(piece)
        entries = [RtpInfoEntry.parse(p) for p in pieces if p.strip()]
        if not entries:
            raise ProtocolError("empty RTP-Info header")
        return cls(entries)

    def __str__(self) -> str:
        return ",".join(str(e) for e in self.entries)
