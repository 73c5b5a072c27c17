"""Reading in windows (`ingest_window`, ms): a live TCP source's bytes (an
RTSP or RTMP publisher, a route pull or a relay) gather in the kernel
between reads. `unwatched_ingest_window` (ms, 40 by default) does it only
while the source's stream has nobody reading it: no front's players, no
HLS segmenter, no recording; that costs nobody latency. When someone
starts reading, the source is read at once from the end of the window it
is held in: the stream's first reader releases its socket (`release`),
so the bytes that gathered meanwhile are read in the same loop turn.

A camera's bytes arrive a frame or a packet at a time, and each arrival
wakes the shard for one small read: ~50 reads a second for a 1 Mbit/s
RTSP publisher, each paying a wake-up, a syscall, the ACK it sends and
caches gone cold since the last one. That per-read cost, not the
per-packet work, is most of what ingest costs (`bench/ingest.py
--windows 0,40`). With a window, a source that has read is held until
the gate opens; the gate opens once per window for every source held
meanwhile, so they all read in the same wake-up, each taking what
gathered since its last read. A byte waits at most one window more than
it would have.

Holding is the socket's receive low-water mark (SO_RCVLOWAT): raised to
`HOLD_LOWAT`, the kernel keeps the bytes and does not report the socket
readable; set back to 1 it reports it at once if anything gathered (Linux
checks on the setsockopt). Two setsockopt calls per window, no wake-up for
the bytes held and nothing for the event loop to undo; a stream fast
enough to fill `HOLD_LOWAT` within a window is read when it does.

One timer per shard, armed only while a source is held (none when no
bytes arrive); a source is held at most once, so the list is bounded by
the shard's connections. A source that ends leaves the gate (`forget`);
one whose socket closed anyway is skipped when the gate opens (a closed
socket once raised there and left every source after it in that window
held for good, at `HOLD_LOWAT`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

log = logging.getLogger("hub.shard.read_gate")

__all__ = ["HOLD_LOWAT", "HeldSocket", "ReadGate"]

#: Bytes that make a held socket readable before its window ends.
HOLD_LOWAT = 256 * 1024


class HeldSocket:
    """One source's socket as its gate holds it: `hold()` after each read."""

    __slots__ = ("gate", "sock", "held")

    def __init__(self, gate: ReadGate, sock: Any) -> None:
        self.gate = gate
        self.sock = sock  # a socket, or uvloop's stand-in with setsockopt
        self.held = False

    def hold(self) -> None:
        if not self.held:
            self.gate.hold(self)

    def release(self) -> None:
        """Read at once again, before the window ends (its stream is now read)."""
        if self.held:
            self.gate.release(self)

    def forget(self) -> None:
        """The source ended: out of the gate, its socket left alone."""
        if self.held:
            self.gate.forget(self)

    def _lowat(self, n: int) -> None:
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, n)
        except (OSError, ValueError):  # closed meanwhile (uvloop's stand-in: ValueError)
            pass


class ReadGate:
    """Opens every `window_ms` for the sources held since it last opened.
    `always`: every live source is held after each read (`ingest_window`);
    otherwise only one whose stream nobody reads (`unwatched_ingest_window`;
    the source's `IngestSession` decides)."""

    __slots__ = ("window", "always", "_held", "_timer")

    def __init__(self, window_ms: int, *, always: bool = True) -> None:
        if window_ms <= 0:
            raise ValueError("a read gate needs a window > 0 ms")
        self.window = window_ms / 1000.0
        self.always = always
        self._held: list[HeldSocket] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def held(self) -> int:
        """Sources held now."""
        return len(self._held)

    @property
    def armed(self) -> bool:
        """Whether the timer is set (only while a source is held)."""
        return self._timer is not None

    @classmethod
    def for_config(cls, ingest_window: int, unwatched_ingest_window: int) -> ReadGate | None:
        """The shard's gate for its settings: `ingest_window` for every live
        source if set, else `unwatched_ingest_window` for unwatched ones;
        None if both are 0 (every read at once)."""
        if ingest_window > 0:
            return cls(ingest_window)
        if unwatched_ingest_window > 0:
            return cls(unwatched_ingest_window, always=False)
        return None

    def socket_of(self, transport: asyncio.BaseTransport) -> HeldSocket | None:
        """A source's handle on its transport's socket (None without one)."""
        sock = transport.get_extra_info("socket")
        return HeldSocket(self, sock) if sock is not None else None

    def hold(self, source: HeldSocket) -> None:
        """`source` has just read: hold its socket until the window ends."""
        if source.held:
            return
        source.held = True
        source._lowat(HOLD_LOWAT)
        self._held.append(source)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.window, self.open)

    def release(self, source: HeldSocket) -> None:
        """Let one held source read now; the timer stays only for the others."""
        if self.forget(source):
            source._lowat(1)

    def forget(self, source: HeldSocket) -> bool:
        """`source` is held no more (True if it was); the timer stays only
        for the others."""
        if not source.held:
            return False
        source.held = False
        self._held.remove(source)
        if not self._held and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return True

    def open(self) -> None:
        """Release every source held: the timer's call, and on close."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, []
        for source in held:
            source.held = False
            source._lowat(1)

    def close(self) -> None:
        self.open()
