"""The shard's table of live streams (publishers and pulls write them)."""

from __future__ import annotations

from typing import Any

from ..child import ChildArgs
from ..errors import NotFound
from ..placement import canonical_path


class StreamTable:
    def __init__(self, args: ChildArgs) -> None:
        self.args = args
        self._streams: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def open(self, path: str) -> dict[str, Any]:
        path = canonical_path(path)
        stream = self._streams.get(path)
        if stream is None:
            raise NotFound("404 page not found")
        return dict(stream.describe())

    def close_all(self) -> None:
        self._streams.clear()
