"""Recording in the owning shard: every stream a rule matches, to fMP4 files.

A `Recorder` is an in-process ring reader (`Fmp4Feed`) with its own
segmenter (the rule's segment length, `PART` s fragments). Each segment is
one file, ``RECORDINGS/path/YYYY-MM-DD_HH-MM-SS.mp4``: the init, then each
part appended as it completes (one ``writev``, a few tens of KB, on the
loop: page-cache writes), so a file cut short by a crash plays up to its
last whole fragment. A file is closed — fsync, close, then retention for
its path — in the shard's file thread, never on the loop. New parameter
sets start a new file (a file has one init). A file is also closed past
`FILE_WALL_MARGIN` times its longest length of wall clock or past
`FILE_MAX_BYTES`, whatever the media timestamps say.

A write that fails (disk full, no permission, any OSError) stops that
stream's recording with an ERROR line and a count; the live stream goes on.
The file written so far stays (it plays up to its last whole fragment).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..media.mp4 import Fmp4Part
from ..media.mp4.recorder import RecordingFile
from ..media.mp4.segmenter import MAX_SEGMENT
from ..store.recordings import RecordRule, RecordTable, file_name, path_folder
from .fmp4_feed import Fmp4Feed
from .record_retention import apply_retention, sweep
from .stream import Stream

log = logging.getLogger("hub.shard.record")

#: Fragment length in recordings: seeks and range starts land on keyframes
#: anyway; shorter fragments cost a moof (~300 B) each and lose less in a crash.
PART = 1.0
#: Age- and size-based retention over every path this shard owns, also for
#: paths that are not live (their files still age).
SWEEP_EVERY = 60.0
#: An open file is closed (and a new one begun) past the rule's file length
#: by the media clock, as FFmpeg's segment muxer and MediaMTX's recorder cut
#: theirs; past `FILE_WALL_MARGIN` times the longest that rule lets a file
#: run (its length, or `MAX_SEGMENT` without a keyframe) of wall clock, or
#: past `FILE_MAX_BYTES`, it is closed anyway, keyframe or not: a publisher
#: whose timestamps froze would keep one file open, growing, forever, and
#: retention never deletes an open file.
FILE_WALL_MARGIN = 2.0
FILE_MAX_BYTES = 4 * 1024 ** 3
#: Names tried in one second before giving up (`-1` ... `-N`).
NAME_TRIES = 100
_O_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


@dataclass
class RecordCounters:
    files: int = 0  # files opened
    bytes: int = 0  # bytes written
    errors: int = 0  # recordings stopped by a failed write or open
    deleted: int = 0  # files removed by retention


def file_wall(rule: RecordRule) -> float:
    """Wall-clock seconds a file of ``rule`` may stay open."""
    return FILE_WALL_MARGIN * max(rule.segment, MAX_SEGMENT)


class Recorder(Fmp4Feed):
    def __init__(self, manager: RecordManager, stream: Stream, rule: RecordRule) -> None:
        self.manager = manager
        self.rule = rule
        self.folder = path_folder(manager.root, stream.path)
        self.fd: int | None = None
        self.name = ""
        self.opened = 0.0
        self._written = 0  # bytes in the open file
        self._file: RecordingFile | None = None
        self._sequence = -1
        self._init_version = -1
        # Parts are written as they come: the segment's bytes are not kept
        # (they were a whole file's worth, up to an hour of the stream).
        super().__init__(stream, part_target=PART, segment_target=rule.segment, window=1, segment_bytes=False,
                         segment_wall=file_wall(rule), segment_max_bytes=FILE_MAX_BYTES)

    def pump(self) -> None:
        try:
            super().pump()
        except Exception:  # a bug, not the disk: stop this recording, keep its file
            log.exception("%s: recording failed", self.stream.path)
            self.manager.counters.errors += 1
            self.stop(finish=False)

    def on_part(self, part: Fmp4Part) -> None:
        seg = self.segmenter
        assert seg is not None
        try:
            if self.fd is None or part.sequence != self._sequence or seg.init_version != self._init_version:
                self._close_file()
                self._open(part, seg.init_version)
            assert self._file is not None and self.fd is not None
            chunks = self._file.part(part)
            want = sum(len(c) for c in chunks)
            wrote = os.writev(self.fd, chunks)
            self._written += wrote
            self.manager.counters.bytes += wrote
            if wrote != want:  # a short write to a regular file: the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as e:
            self.fail(e)

    def _open(self, part: Fmp4Part, init_version: int) -> None:
        seg = self.segmenter
        assert seg is not None
        wall = part.program_date_time if part.program_date_time is not None else time.time()
        self.folder.mkdir(parents=True, exist_ok=True)
        for n in range(NAME_TRIES):
            name = file_name(wall, n)
            try:
                self.fd = os.open(self.folder / name, _O_FLAGS, 0o644)
                break
            except FileExistsError:
                continue
        else:
            raise OSError(errno.EEXIST, f"{NAME_TRIES} recordings in one second")
        self.name = name
        self.opened = wall
        self._written = 0
        self._file = RecordingFile(seg.init, seg.tracks)
        self._sequence = part.sequence
        self._init_version = init_version
        self.manager.counters.files += 1

    def _close_file(self) -> None:
        """Hand the open file to the file thread: fsync, close, then retention."""
        if self.fd is None:
            return
        fd, self.fd, self._file = self.fd, None, None
        self.manager.close_file(fd, self.folder, self.rule, self.name)

    def fail(self, e: OSError) -> None:
        log.error("%s: recording stopped: %s (%s)", self.stream.path,
                  e.strerror or e, errno.errorcode.get(e.errno or 0, "?"))
        self.manager.counters.errors += 1
        if self.fd is not None and not self._written:  # nothing in it: no file
            os.close(self.fd)
            self.fd = None
            try:
                os.unlink(self.folder / self.name)
            except OSError:
                pass
        self.stop(finish=False)

    def stop(self, finish: bool = True) -> None:
        """End of the stream (or of its rule): the open part is written, the file closed."""
        if self.closed:
            return
        if finish:
            self.finish()
        self.detach()
        self._close_file()
        self.manager.recorders.pop(self.stream.stream_id, None)

    def info(self) -> dict[str, Any]:
        return {"path": self.stream.path, "file": self.name, "since": self.opened,
                "pattern": self.rule.pattern}


class RecordManager:
    """The shard's recorders: started when a stream a rule matches goes live."""

    def __init__(self, root: Path, rules: RecordTable, shard_index: int, shard_count: int) -> None:
        self.root = root
        self.rules = rules
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.counters = RecordCounters()
        self.recorders: dict[int, Recorder] = {}
        self.streams: dict[int, Stream] = {}  # live streams, to match new rules against
        # One thread for the files: closes and retention in order, off the loop.
        self._files = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record-files")
        self._pending: set[asyncio.Future[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # -- streams -------------------------------------------------------------------------
    def stream_opened(self, stream: Stream) -> None:
        self.streams[stream.stream_id] = stream
        self._start(stream)
        self._sweep_soon()

    def _sweep_soon(self) -> None:
        """Retention sweeps run while there are rules (paths not live age too)."""
        if self._sweeper is None and len(self.rules):
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    def _start(self, stream: Stream) -> None:
        rule = self.rules.match(stream.path)
        if rule is None or stream.stream_id in self.recorders or stream.closed:
            return
        try:
            rec = Recorder(self, stream, rule)
        except OSError as e:  # the ring went away under us
            log.warning("%s: not recorded: %s", stream.path, e)
            return
        self.recorders[stream.stream_id] = rec
        stream.add_tap(rec.pump)
        log.info("%s: recording (%s, %g s files)", stream.path, rule.pattern, rule.segment)
        rec.pump()

    def stream_closed(self, stream: Stream) -> None:
        self.streams.pop(stream.stream_id, None)
        rec = self.recorders.get(stream.stream_id)
        if rec is not None:
            rec.pump()  # what the ring still holds
            rec.stop()

    def set_rules(self, rules: RecordTable) -> None:
        """New rules: recordings no rule wants stop, streams a rule now wants start."""
        self.rules = rules
        for rec in list(self.recorders.values()):
            if rules.match(rec.stream.path) != rec.rule:
                rec.stop()
        for stream in list(self.streams.values()):
            self._start(stream)
        self._sweep_soon()

    # -- files ---------------------------------------------------------------------------
    def close_file(self, fd: int, folder: Path, rule: RecordRule, name: str) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._files, _finish_file, fd, folder, rule.max_age, rule.max_bytes, name)
        self._pending.add(fut)
        fut.add_done_callback(self._file_done)

    def _file_done(self, fut: asyncio.Future[Any]) -> None:
        self._pending.discard(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.error("closing a recording failed: %s", exc)
            self.counters.errors += 1
            return
        self.counters.deleted += fut.result()

    def active(self) -> set[str]:
        """Files being written (retention leaves them alone)."""
        return {str(r.folder / r.name) for r in self.recorders.values() if r.fd is not None}

    async def _sweep_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            try:
                self.counters.deleted += await loop.run_in_executor(
                    self._files, sweep, self.root, self.rules, self.shard_index, self.shard_count,
                    self.active(), time.time())
            except Exception:
                log.exception("recordings retention sweep failed")

    def counts(self) -> dict[str, int]:
        c = self.counters
        return {"active": len(self.recorders), "files": c.files, "bytes": c.bytes, "errors": c.errors,
                "deleted": c.deleted}

    def stats(self) -> dict[str, Any]:
        return {**self.counts(), "recording": [r.info() for r in self.recorders.values()]}

    async def aclose(self) -> None:
        """Shard stop: every file closed and synced (streams were closed first)."""
        for rec in list(self.recorders.values()):
            rec.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=2.0)
        self._files.shutdown(wait=False)


def _finish_file(fd: int, folder: Path, max_age: float, max_bytes: int, name: str) -> int:
    """In the file thread: a closed recording is made durable, then its path's
    retention runs (the file just closed counts, and may go if it is the oldest)."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return apply_retention(folder, max_age, max_bytes, set(), time.time())
