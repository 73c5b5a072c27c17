"""HLS media playlists (RFC 8216, draft-pantos-hls-rfc8216bis for LL-HLS).

- `MediaPlaylist`: a live sliding window of TS (or, with ``map_uri``, fMP4)
  segments. The segmenter adds a segment when it closes one; ``add()``
  returns the segments that fell out of the window so their files can be
  deleted.
- `render_ll_playlist`: Low-Latency HLS over fMP4 parts, rendered from the
  fMP4 segmenter's state (`LlSource`), and `reload_decision`: whether a
  blocking playlist reload (``_HLS_msn``/``_HLS_part``) is answered now,
  waits, or is refused.
- `render_vod_playlist`: a finished playlist over recorded segments.

Playlist text is rendered per request because each player's URIs carry its
own query (the access token); a playlist is a few hundred bytes, so that
costs less than caching one text per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Protocol, Sequence

from hub.errors import BadRequest


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
    With ``map_uri`` the segments are fMP4 and need that init segment
    (``EXT-X-MAP``, version 7).
    """

    __slots__ = ("window", "uri_template", "version", "map_uri", "_segments", "_next_seq",
                 "_target", "_discontinuity_seq", "ended")

    def __init__(self, window: int = 5, uri_template: str = "{seq}.ts",
                 first_sequence: int = 0, version: int = 3, map_uri: str | None = None) -> None:
        if window < 1:
            raise ValueError("window must hold at least one segment")
        self.window = window
        self.uri_template = uri_template
        self.version = max(version, 7) if map_uri else version
        self.map_uri = map_uri
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
        if self.map_uri:
            lines.append(f'#EXT-X-MAP:URI="{self.map_uri}{suffix}"')
        for seg in self._segments:
            if seg.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(seg.uri + suffix)
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        lines.append("")
        return "\n".join(lines)


# -- Low-Latency HLS over fMP4 -------------------------------------------------


class PartView(Protocol):
    """A partial segment as the LL playlist needs it (`PartInfo` is one)."""

    @property
    def number(self) -> int: ...  # stream-wide part counter: the part's URI
    @property
    def duration(self) -> float: ...
    @property
    def independent(self) -> bool: ...


class SegmentView(Protocol):
    """A segment as the LL playlist needs it (`SegmentInfo` is one)."""

    @property
    def sequence(self) -> int: ...
    @property
    def duration(self) -> float: ...
    @property
    def parts(self) -> Sequence[PartView]: ...
    @property
    def discontinuity(self) -> bool: ...
    @property
    def init_version(self) -> int: ...
    @property
    def program_date_time(self) -> float | None: ...


class LlSource(Protocol):
    """What a live fMP4 playlist is rendered from: `Fmp4Segmenter` is one."""

    @property
    def segments(self) -> Sequence[SegmentView]: ...  # the window, oldest first
    @property
    def current(self) -> SegmentView | None: ...  # the open segment and its parts so far
    @property
    def part_target(self) -> float: ...
    @property
    def target_duration(self) -> int: ...
    @property
    def next_part_number(self) -> int: ...
    @property
    def discontinuity_sequence(self) -> int: ...
    @property
    def ended(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Fmp4Uris:
    """URI templates: ``seq`` (segment), ``n`` (part number), ``v`` (init version).

    Parts are named by their stream-wide number, not by segment and index, so
    the preload hint names the next part before anyone knows which segment
    it will belong to."""

    segment: str = "{seq}.m4s"
    part: str = "part{n}.m4s"
    init: str = "init{v}.mp4"


#: PART-HOLD-BACK in part targets: at least 2 (MUST), 3 recommended (SHOULD).
PART_HOLD_BACK = 3
#: EXT-X-PART tags are kept for segments starting within this many target durations of the end.
PART_KEEP = 3


def _ceil_ms(seconds: float) -> float:
    return math.ceil(round(seconds * 1000, 6)) / 1000


def format_program_date_time(epoch: float) -> str:
    """ISO 8601 with milliseconds, UTC (``2024-05-01T12:00:00.000Z``)."""
    t = datetime.fromtimestamp(round(epoch, 3), timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def render_ll_playlist(src: LlSource, uris: Fmp4Uris = Fmp4Uris(), query: str | None = None, *,
                       low_latency: bool = True) -> str:
    """The live fMP4 playlist; ``low_latency`` adds parts, the preload hint and
    blocking reload (LL-HLS), without it this is the plain fMP4 variant."""
    suffix = f"?{query}" if query else ""
    segments = list(src.segments)
    current = src.current if low_latency and not src.ended else None
    first = segments[0] if segments else current
    part_target = _ceil_ms(src.part_target)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{src.target_duration}"]
    if low_latency:
        lines.append("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
                     f"PART-HOLD-BACK={PART_HOLD_BACK * part_target:.3f}")
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={part_target:.3f}")
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{first.sequence if first else 0}")
    if src.discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{src.discontinuity_sequence}")
    # Which segments still list their parts: those starting within PART_KEEP
    # target durations of the playlist's end (rfc8216bis 6.2.2).
    keep_from = len(segments)
    if low_latency:
        span = current.duration if current else 0.0
        while keep_from > 0 and span + segments[keep_from - 1].duration <= PART_KEEP * src.target_duration:
            keep_from -= 1
            span += segments[keep_from].duration
    init_version: int | None = None
    listed: list[tuple[SegmentView, bool]] = [(s, i >= keep_from) for i, s in enumerate(segments)]
    if current is not None and current.parts:
        listed.append((current, True))
    for seg, with_parts in listed:
        if seg.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if seg.init_version != init_version:
            init_version = seg.init_version
            lines.append(f'#EXT-X-MAP:URI="{uris.init.format(v=init_version)}{suffix}"')
        if seg.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_program_date_time(seg.program_date_time)}")
        if with_parts:
            for p in seg.parts:
                lines.append(f"#EXT-X-PART:DURATION={p.duration:.3f},"
                             f'URI="{uris.part.format(n=p.number)}{suffix}"'
                             + (",INDEPENDENT=YES" if p.independent else ""))
        if seg is not current:
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(uris.segment.format(seq=seg.sequence) + suffix)
    if src.ended:
        lines.append("#EXT-X-ENDLIST")
    elif low_latency and first is not None:
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{uris.part.format(n=src.next_part_number)}'
                     f'{suffix}"')
    lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class LlState:
    """What a blocking reload is decided on; small enough to send between processes."""

    last_sequence: int  # the last complete segment (one before the open one when none is)
    last_parts: int  # how many parts it has
    open_parts: int  # parts of segment last_sequence + 1 so far
    part_target: float
    target_duration: int
    ended: bool

    @classmethod
    def of(cls, src: LlSource) -> LlState:
        segments = src.segments
        current = src.current
        if segments:
            last = segments[-1]
            last_sequence, last_parts = last.sequence, len(last.parts)
        else:
            last_sequence, last_parts = (current.sequence - 1 if current else -1), 0
        return cls(last_sequence, last_parts, len(current.parts) if current else 0,
                   src.part_target, src.target_duration, src.ended)

    @property
    def timeout(self) -> float:
        """A reload blocked this long gets 503 (rfc8216bis 6.2.5.2: three target durations)."""
        return 3.0 * self.target_duration


class Reload(Enum):
    READY = "ready"
    WAIT = "wait"


#: Digits of a decimal-integer we accept in a delivery directive.
_MAX_DIRECTIVE_DIGITS = 19


def _directive(value: str, name: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_DIRECTIVE_DIGITS:
        raise BadRequest(f"{name} must be a decimal integer")
    return int(value)


def advance_part_limit(part_target: float) -> float:
    """How many parts past the last one a client may ask for (rfc8216bis 6.2.5.2)."""
    return 3.0 / part_target if part_target < 1.0 else 3.0


def reload_decision(state: LlState, msn: str | None, part: str | None) -> Reload:
    """Blocking playlist reload (rfc8216bis 6.2.5.2) for ``_HLS_msn``/``_HLS_part``.

    READY: answer with the playlist now; WAIT: hold the request until the
    state changes (at most `LlState.timeout`); BadRequest (400): a part
    without a segment, a value that is not a decimal integer, or a request
    too far ahead (a segment more than two past the last, or a part more
    than the Advance Part Limit past the last one).
    """
    if part is not None and msn is None:
        raise BadRequest("_HLS_part without _HLS_msn")
    if state.ended or msn is None:
        return Reload.READY  # directives are ignored once the playlist has ended
    m = _directive(msn, "_HLS_msn")
    n = _directive(part, "_HLS_part") if part is not None else None
    last = state.last_sequence
    if m > last + 2:
        raise BadRequest("_HLS_msn too far ahead")
    if n is None:
        return Reload.READY if m <= last else Reload.WAIT
    if m == last and n >= state.last_parts:
        m, n = last + 1, 0  # past a segment's final part: part 0 of the next one
    if m <= last or (m == last + 1 and n < state.open_parts):
        return Reload.READY
    # Parts still to come before the requested one; for a segment not begun
    # yet only those in it are counted (the open one may end any moment).
    ahead = n - state.open_parts + 1 if m == last + 1 else n + 1
    if ahead > advance_part_limit(state.part_target):
        raise BadRequest("_HLS_part too far ahead")
    return Reload.WAIT


# -- VOD over recordings -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VodSegment:
    uri: str
    duration: float
    byterange: tuple[int, int] | None = None  # (length, offset) of the media in ``uri``
    map_uri: str | None = None  # its init segment (fMP4)
    map_range: tuple[int, int] | None = None  # (length, offset) of the init in ``map_uri``
    discontinuity: bool = False


def render_vod_playlist(segments: Sequence[VodSegment], query: str | None = None) -> str:
    """A finished playlist (``EXT-X-PLAYLIST-TYPE:VOD``, ``EXT-X-ENDLIST``).

    A recorded file holds its own init: point ``map_uri``/``map_range`` at
    it and ``byterange`` at the fragments after it. A new ``EXT-X-MAP`` is
    written only when a segment's init differs from the previous one's.
    """
    suffix = f"?{query}" if query else ""
    target = max((math.ceil(round(s.duration, 3)) for s in segments), default=0)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
    current_map: tuple[str | None, tuple[int, int] | None] = (None, None)
    for s in segments:
        if s.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if s.map_uri is not None and (s.map_uri, s.map_range) != current_map:
            current_map = (s.map_uri, s.map_range)
            attrs = f'URI="{s.map_uri}{suffix}"'
            if s.map_range is not None:
                attrs += f',BYTERANGE="{s.map_range[0]}@{s.map_range[1]}"'
            lines.append(f"#EXT-X-MAP:{attrs}")
        lines.append(f"#EXTINF:{s.duration:.3f},")
        if s.byterange is not None:
            lines.append(f"#EXT-X-BYTERANGE:{s.byterange[0]}@{s.byterange[1]}")
        lines.append(s.uri + suffix)
    lines.append("#EXT-X-ENDLIST")
    lines.append("")
    return "\n".join(lines)
