"""Small headers: CSeq (§12.17), Content-Base (§12.11), Public (§12.30)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ProtocolError
from ._params import parse_int


@dataclass
class CSeq:
    value: int

    @classmethod
    def parse(cls, text: str) -> CSeq:
        return cls(parse_int(text.strip(), "CSeq", 0xFFFFFFFF))

    def __str__(self) -> str:
        return str(self.value)


@dataclass
class ContentBase:
    """The base for relative `a=control` URLs of a DESCRIBE answer."""

    url: str

    @classmethod
    def parse(cls, text: str) -> ContentBase:
        url = text.strip()
        if not url or any(c.isspace() for c in url):
            raise ProtocolError(f"bad Content-Base {text[:80]!r}")
        return cls(url)

    def __str__(self) -> str:
        return self.url


@dataclass
class Public:
    """The methods an OPTIONS answer lists."""

    methods: list[str]

    @classmethod
    def parse(cls, text: str) -> Public:
        return cls([m.strip() for m in text.split(",") if m.strip()])

    def __contains__(self, method: object) -> bool:
        return isinstance(method, str) and method.upper() in (m.upper() for m in self.methods)

    def __str__(self) -> str:
        return ", ".join(self.methods)
