"""HLS media playlist (RFC 8216) for a live sliding window of TS segments.

The segmenter adds a segment when it closes one; ``add()`` returns the
segments that fell out of the window so their files can be deleted. The
playlist text is rendered per request because each player's URIs carry its
own query (the access token); a playlist is a few hundred bytes, so that
costs less than caching one text per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HlsSegment:
    sequence: int
    duration: float  # seconds
    uri: str
    discontinuity: bool = False


class MediaPlaylist:
    """A live playlist: the last ``window`` segments, numbered from ``first_sequence``.

    ``uri_template`` is formatted with ``seq`` (``"{seq}.ts"``). The target
    duration is the ceiling of the longest segment ever listed, never the
    window's, because RFC 8216 forbids it to change during a presentation.
    """

    __slots__ = ("window", "uri_template", "version", "_segments", "_next_seq",
                 "_target", "_discontinuity_seq", "ended")

    def __init__(self, window: int = 5, uri_template: str = "{seq}.ts",
                 first_sequence: int = 0, version: int = 3) -> None:
        if window < 1:
            raise ValueError("window must hold at least one segment")
        self.window = window
        self.uri_template = uri_template
        self.version = version
        self._segments: list[HlsSegment] = []
        self._next_seq = first_sequence
        self._target = 0
        self._discontinuity_seq = 0
        self.ended = False

    @property
    def segments(self) -> tuple[HlsSegment, ...]:
        return tuple(self._segments)

    @property
    def media_sequence(self) -> int:
        return self._segments[0].sequence if self._segments else self._next_seq

    @property
    def target_duration(self) -> int:
        return self._target

    def add(self, duration: float, discontinuity: bool = False) -> list[HlsSegment]:
        """Append the next segment; return those pushed out of the window."""
        if duration < 0 or math.isnan(duration) or math.isinf(duration):
            raise ValueError("segment duration must be a finite non-negative number")
        seq = self._next_seq
        self._next_seq += 1
        seg = HlsSegment(seq, duration, self.uri_template.format(seq=seq), discontinuity)
        self._segments.append(seg)
        # Ceil of the value as printed, so 2.0000001 s does not become 3.
        self._target = max(self._target, math.ceil(round(duration, 3)))
        dropped = self._segments[:-self.window]
        del self._segments[:-self.window]
        # RFC 8216 6.2.1: count discontinuities that left the window.
        self._discontinuity_seq += sum(1 for d in dropped if d.discontinuity)
        return dropped

    def render(self, query: str | None = None) -> str:
        """The playlist text; ``query`` (without ``?``) is appended to every URI."""
        suffix = f"?{query}" if query else ""
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{self.version}",
            f"#EXT-X-TARGETDURATION:{self._target}",
            f"#EXT-X-MEDIA-SEQUENCE:{self.media_sequence}",
        ]
        if self._discontinuity_seq:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuity_seq}")
        for seg in self._segments:
            if seg.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(seg.uri + suffix)
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        lines.append("")
        return "\n".join(lines)
