"""Recorded files as the playback API reads them: listed, indexed, joined, streamed.

Any front reads the recordings folder (the shard that owns a path writes
it). File work runs in threads, never on the front's loop: a folder
listing, indexing (``moov`` and every ``moof``, through `os.pread`),
joining a range (`join_range`), and reading the media for a response in
`CHUNK`-byte pieces. Indexes of closed files are cached (`CACHE_FILES`,
keyed by name, size and mtime, so a file still growing is indexed again
when it has grown).

Indexing and joining are CPU work that holds the GIL most of the time
(~8 ms a 60 s file; ~0.25 ms a fragment joined, ~0.9 s for an hour): they
run in the front's `WORKERS` threads, at most `WORKERS` at once and
`QUEUE` more waiting; a request that would be one more is refused at once
(503, nothing started), so a client repeating costly requests delays the
playback requests of others, never the loop. A joined range is kept
(`JoinedRanges`: `CACHE_RANGES` of them, at most `CACHE_RANGE_BYTES`) by
folder, start, end and the name, size and mtime of every file it was
joined from: the Range and HEAD requests a ``<video>`` makes after the
first, and a playlist's segments, cost no join; requests for a range
being joined wait for that join.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import AsyncIterator, Callable, NamedTuple

from ...errors import NotFound, ProtocolError, ServiceUnavailable
from ...media.mp4.playback import FilePiece, Mp4Range, RecordedFile, end_key, index_file, join_range
from ...store.recordings import RecordingFile, list_recordings, parse_name
from ...workers import Workers

log = logging.getLogger("hub.api.recordings")

#: File indexes kept per front (a 60 s file with 1 s fragments: ~30 KB).
CACHE_FILES = 512
#: Bytes read from a file per thread call while answering.
CHUNK = 256 * 1024
#: Files a single request may index (a 1 h range of 60 s files is 61).
MAX_FILES = 400
#: Indexings and joins run at once per front (threads), and how many more may
#: wait for one; past that a request is 503 at once. Two: they hold the GIL
#: most of the time, so more threads would not be faster, only slow the loop.
WORKERS = 2
QUEUE = 8
#: Joined ranges kept per front, and the memory they may hold (an hour of 1 s
#: fragments holds ~6 MB: its moofs and ~650 bytes of objects per fragment):
#: a player's range and its playlist's, for a few players at once.
CACHE_RANGES = 16
CACHE_RANGE_BYTES = 32 * 1024 * 1024
#: Memory a joined range holds per fragment besides its moof (measured with
#: tracemalloc: its FilePiece, RangeFragment and their slots).
_PER_FRAGMENT = 700


#: A listed recording (hub.store.recordings).
Listed = RecordingFile


def list_folder(folder: Path) -> list[Listed]:
    """A path's recordings, oldest first (blocking: call in a thread)."""
    return list_recordings(folder)


def _index(path: Path) -> RecordedFile | None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        ix = index_file(lambda offset, n: os.pread(fd, n, offset), size)
    except ProtocolError:
        return None  # not a recording we can read (damaged head): left out
    finally:
        os.close(fd)
    order = parse_name(path.name)
    start = ix.wall_start
    if start is None:
        start = order[0] if order else 0.0
    return RecordedFile(str(path), start, ix)


class Busy(ServiceUnavailable):
    """Too much recording work under way: 503 with Retry-After, its message
    for the client (a client made to retry is not a fault to log)."""

    public_message = True
    headers = {"Retry-After": "1"}


def recording_workers(workers: int = WORKERS, queue: int = QUEUE) -> Workers:
    """A front's threads for recording work (hub.workers): `Busy` past the bound."""
    return Workers(workers, queue, "recordings", lambda: Busy("too many recordings being read; try again"))


class RecordingIndex:
    """Indexes of recorded files, cached by (path, size, mtime)."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self._cache: OrderedDict[tuple[str, int, int], RecordedFile | None] = OrderedDict()

    async def files(self, folder: Path, listed: list[Listed]) -> list[RecordedFile]:
        """The indexes of ``listed`` (in ``folder``), in order; unreadable ones left out."""
        if len(listed) > MAX_FILES:
            raise ProtocolError(f"at most {MAX_FILES} recordings at once")
        keys = [(str(folder / f.name), f.size, f.mtime_ns) for f in listed]
        missing = [k for k in keys if k not in self._cache]
        if missing:
            found = await self.workers.run(_index_all, [Path(k[0]) for k in missing])
            for k, rec in zip(missing, found):
                self._cache[k] = rec
        out = []
        for k in keys:
            self._cache.move_to_end(k)
            rec = self._cache[k]
            if rec is not None:
                out.append(rec)
        while len(self._cache) > CACHE_FILES:
            self._cache.popitem(last=False)
        return out


def _try_index(path: Path) -> RecordedFile | None:
    try:
        return _index(path)
    except OSError:
        return None  # deleted by retention meanwhile


def _index_all(paths: list[Path]) -> list[RecordedFile | None]:
    return [_try_index(p) for p in paths]


RangeKey = tuple[str, float, float, tuple[tuple[str, int, int], ...]]


class JoinedRanges:
    """Joined ranges, kept by (folder, start, end, every file's name, size and
    mtime): the most recently used `CACHE_RANGES`, at most `CACHE_RANGE_BYTES`
    (a bigger one is answered, not kept). Joins run in `workers`; the
    requests for a range being joined wait for that one join."""

    def __init__(self, workers: Workers, count: int = CACHE_RANGES, size: int = CACHE_RANGE_BYTES) -> None:
        self.workers = workers
        self.count = count
        self.size = size
        self.held = 0  # bytes (`weight`) of what is kept
        self._kept: OrderedDict[RangeKey, tuple[Mp4Range, int]] = OrderedDict()
        self._joining: dict[RangeKey, asyncio.Future[tuple[Mp4Range, int]]] = {}

    async def join(self, folder: Path, listed: list[Listed], files: list[RecordedFile],
                   start: float, end: float) -> Mp4Range:
        """`join_range(files, start, end)`; ``listed`` are the files as listed
        (``files`` their indexes, unreadable ones left out)."""
        key = (str(folder), start, end_key(files, end), tuple((f.name, f.size, f.mtime_ns) for f in listed))
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept[0]
        joining = self._joining.get(key)
        if joining is None:
            joining = self.workers.submit(_join, files, start, end)
            self._joining[key] = joining
            joining.add_done_callback(lambda fut: self._joined(key, fut))
        # Shielded: a request that goes away leaves the join to the others.
        return (await asyncio.shield(joining))[0]

    def _joined(self, key: RangeKey, fut: asyncio.Future[tuple[Mp4Range, int]]) -> None:
        del self._joining[key]
        if fut.cancelled() or fut.exception() is not None:
            return
        rng, n = fut.result()
        if n > self.size:
            return
        self._kept[key] = (rng, n)
        self.held += n
        while len(self._kept) > self.count or self.held > self.size:
            _, (_, old) = self._kept.popitem(last=False)
            self.held -= old


def _join(files: list[RecordedFile], start: float, end: float) -> tuple[Mp4Range, int]:
    rng = join_range(files, start, end)
    return rng, weight(rng)


def weight(rng: Mp4Range) -> int:
    """About the memory a joined range holds (its generated bytes and objects)."""
    return sum(len(p) for p in rng.pieces if isinstance(p, bytes)) + _PER_FRAGMENT * len(rng.fragments)


def overlapping(listed: list[Listed], start: float, end: float) -> list[Listed]:
    """Files that may hold wall-clock ``[start, end)``: a file runs from its
    name's second (its true start is up to a second later) to the next one's."""
    out = []
    for i, f in enumerate(listed):
        nxt = listed[i + 1].order[0] + 1.0 if i + 1 < len(listed) else float("inf")
        if f.order[0] < end and nxt > start:
            out.append(f)
    return out


class ByteRange(NamedTuple):
    first: int
    stop: int  # exclusive


def parse_range(header: str | None, length: int) -> ByteRange | None:
    """One ``bytes=`` range of a ``Range`` header; None: send it all (no
    header, several ranges or another unit — RFC 9110 lets us ignore those).
    A range that starts at or past the end comes back empty (answer 416)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    spec = header[6:].strip()
    first_s, dash, last_s = spec.partition("-")
    if not dash:
        return None
    try:
        if first_s == "":
            n = int(last_s)
            if n <= 0:
                return ByteRange(length, length)
            return ByteRange(max(0, length - n), length)
        first = int(first_s)
        last = int(last_s) if last_s else length - 1
    except ValueError:
        return None
    if first >= length:
        return ByteRange(first, first)  # unsatisfiable
    if first < 0 or last < first:
        return None
    return ByteRange(first, min(last + 1, length))


class RecordingGone(NotFound):
    """A file of a range went (retention) or shrank while the range was sent."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


async def stream_range(rng: Mp4Range, first: int, stop: int,
                       abort: Callable[[], None] | None = None) -> AsyncIterator[bytes]:
    """The bytes ``first``..``stop`` of the joined MP4: generated pieces as they
    are, file pieces read in threads, `CHUNK` bytes at a time.

    A file deleted (or cut) before its turn: its length was promised in the
    head already, so the answer cannot say so; ``abort`` (the server's: it
    closes the connection after what was sent) ends it short, with one INFO
    line. Without ``abort`` the `RecordingGone` is raised."""
    fds: dict[str, int] = {}
    try:
        for piece in rng.slice(first, stop):
            if isinstance(piece, bytes):
                yield piece
                continue
            async for chunk in _piece_reader(piece, fds):
                yield chunk
    except RecordingGone as e:
        if abort is None:
            raise
        log.info("recording download cut short: %s (%s)", e.message, os.path.basename(e.path))
        abort()
    finally:
        for fd in fds.values():
            os.close(fd)


async def _piece_reader(piece: FilePiece, fds: dict[str, int]) -> AsyncIterator[bytes]:
    fd = fds.get(piece.path)
    if fd is None:
        try:
            fd = fds[piece.path] = os.open(piece.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise RecordingGone("a recording was deleted while being sent", piece.path) from None
    pos, end = piece.offset, piece.offset + piece.length
    while pos < end:
        data = await asyncio.to_thread(os.pread, fd, min(CHUNK, end - pos), pos)
        if not data:
            raise RecordingGone("a recording shrank while being sent", piece.path)
        pos += len(data)
        yield data
