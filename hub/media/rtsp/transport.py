"""The Transport header (RFC 2326 §12.39).

A client offers a comma list of transport specs; the server answers with the
one it picked. Parameters we know are typed; anything else is kept (name and
optional value) and written back after them, so a relay loses nothing.
Output order is fixed: protocol; delivery; destination; source; interleaved;
ttl; port; client_port; server_port; ssrc; mode; others — the order FFmpeg,
VLC and gortsplib use, so their headers round-trip byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ProtocolError
from ._params import parse_int, parse_pair, split_quoted, unquote

PROTOCOLS = ("RTP/AVP", "RTP/AVP/UDP", "RTP/AVP/TCP")
MODES = ("PLAY", "RECORD")


@dataclass
class TransportSpec:
    """One transport spec, e.g. `RTP/AVP/TCP;unicast;interleaved=0-1`."""

    protocol: str = "RTP/AVP"
    delivery: str | None = "unicast"  # "unicast", "multicast" or None
    destination: str | None = None
    source: str | None = None
    interleaved: tuple[int, int] | None = None
    ttl: int | None = None
    port: tuple[int, int] | None = None
    client_port: tuple[int, int] | None = None
    server_port: tuple[int, int] | None = None
    ssrc: int | None = None
    mode: str | None = None  # upper case: "PLAY" / "RECORD"
    extra: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def is_tcp(self) -> bool:
        return self.protocol.upper() == "RTP/AVP/TCP"

    @property
    def is_multicast(self) -> bool:
        return self.delivery == "multicast"

    @property
    def is_record(self) -> bool:
        return self.mode == "RECORD"

    @classmethod
    def parse(cls, text: str) -> TransportSpec:
        params = split_quoted(text.strip(), ";")
        protocol = params[0]
        if protocol.upper() not in PROTOCOLS:
            raise ProtocolError(f"unsupported transport protocol {protocol[:40]!r}")
        spec = cls(protocol=protocol, delivery=None)
        for param in params[1:]:
            if not param:
                continue
            name, eq, raw = param.partition("=")
            key = name.strip().lower()
            value = unquote(raw.strip())
            if key in ("unicast", "multicast") and not eq:
                spec.delivery = key
            elif key == "interleaved":
                spec.interleaved = parse_pair(value, "interleaved channel", 255)
            elif key == "client_port":
                spec.client_port = parse_pair(value, "client_port", 65535)
            elif key == "server_port":
                spec.server_port = parse_pair(value, "server_port", 65535)
            elif key == "port":
                spec.port = parse_pair(value, "port", 65535)
            elif key == "ttl":
                spec.ttl = parse_int(value, "ttl", 255)
            elif key == "destination" and eq:
                spec.destination = value
            elif key == "source" and eq:
                spec.source = value
            elif key == "ssrc":
                spec.ssrc = parse_int(value.strip(), "ssrc", 0xFFFFFFFF, base=16)
            elif key == "mode":
                mode = value.upper()
                if mode not in MODES:
                    raise ProtocolError(f"unsupported transport mode {value[:20]!r}")
                spec.mode = mode
            else:
                spec.extra.append((name.strip(), raw.strip() if eq else None))
        return spec

    def __str__(self) -> str:
        parts = [self.protocol]
        if self.delivery:
            parts.append(self.delivery)
        if self.destination is not None:
            parts.append(f"destination={self.destination}")
        if self.source is not None:
            parts.append(f"source={self.source}")
        if self.interleaved is not None:
            parts.append("interleaved=%d-%d" % self.interleaved)
        if self.ttl is not None:
            parts.append(f"ttl={self.ttl}")
        if self.port is not None:
            parts.append("port=%d-%d" % self.port)
        if self.client_port is not None:
            parts.append("client_port=%d-%d" % self.client_port)
        if self.server_port is not None:
            parts.append("server_port=%d-%d" % self.server_port)
        if self.ssrc is not None:
            parts.append(f"ssrc={self.ssrc:08X}")
        if self.mode is not None:
            parts.append(f"mode={self.mode.lower()}")
        parts.extend(k if v is None else f"{k}={v}" for k, v in self.extra)
        return ";".join(parts)


@dataclass
class Transport:
    """The whole header: the client's offers in preference order."""

    specs: list[TransportSpec]

    @classmethod
    def parse(cls, text: str) -> Transport:
        specs = [TransportSpec.parse(part) for part in split_quoted(text, ",") if part]
        if not specs:
            raise ProtocolError("empty Transport header")
        return cls(specs)

    def __str__(self) -> str:
        return ",".join(str(s) for s in self.specs)
