"""The Session header (RFC 2326 §12.37): `id[;timeout=N]`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import ProtocolError
from ._params import parse_int

# RFC 2326: session-id = 1*( ALPHA | DIGIT | safe ); cameras also use "-" "_".
_SESSION_ID = re.compile(r"[A-Za-z0-9$\-_.+]{1,128}\Z")


@dataclass
class SessionHeader:
    id: str
    timeout: int | None = None

    @classmethod
    def parse(cls, text: str) -> SessionHeader:
        parts = [p.strip() for p in text.split(";")]
        if not _SESSION_ID.match(parts[0]):
            raise ProtocolError(f"bad session id {parts[0][:40]!r}")
        timeout: int | None = None
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "timeout":
                timeout = parse_int(value.strip(), "session timeout", 86400)
        return cls(parts[0], timeout)

    def __str__(self) -> str:
        return self.id if self.timeout is None else f"{self.id};timeout={self.timeout}"
