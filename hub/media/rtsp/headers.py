"""A case-insensitive, order-keeping multi-dict for RTSP header fields.

RTSP peers (cameras especially) are picky about the spelling and order they
see, and a relay should not reshuffle what it forwards, so we keep both; only
lookup folds case.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Headers:
    """Header fields as an ordered list of (name, value) pairs."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name`, or `default`."""
        key = name.lower()
        for k, v in self._items:
            if k.lower() == key:
                return v
        return default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def get_all(self, name: str) -> list[str]:
        """Every value of `name`, in order (e.g. several WWW-Authenticate)."""
        key = name.lower()
        return [v for k, v in self._items if k.lower() == key]

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping any existing ones of that name."""
        self._items.append((name, value))

    def set(self, name: str, value: str) -> None:
        """Replace the first `name` in place (keeping its position and
        spelling) and drop any others; append when absent."""
        key = name.lower()
        out: list[tuple[str, str]] = []
        done = False
        for k, v in self._items:
            if k.lower() == key:
                if not done:
                    out.append((k, value))
                    done = True
                continue
            out.append((k, v))
        if not done:
            out.append((name, value))
        self._items = out

    def remove(self, name: str) -> None:
        key = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != key]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def encode_into(self, out: bytearray) -> None:
        """Append `Name: value\\r\\n` for each field."""
        for k, v in self._items:
            out += f"{k}: {v}\r\n".encode("utf-8", "surrogateescape")
