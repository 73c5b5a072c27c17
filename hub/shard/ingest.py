"""One ingest session per source: whatever publishes a path, in one place.

Every way a stream gets into a shard — an RTSP publisher, a route pull's
RTSP client, and next RTMP publishers, WHIP and relays from other nodes — is
a *source* (its protocol: requests, handshakes, sockets) plus one
`IngestSession` (the stream: tracks, ring entries, liveness). The session
owns:

- the tracks and their per-track ingest (`hub.shard.rtp_in.TrackIngest`:
  depacketisers, decode times, the time base), made when the source says
  the stream goes live (`go_live`, which is `StreamTable.publish`);
- two ways in: RTP per track (`bind_interleaved`, `rtp_sinks`,
  `receive_rtsp` for an RTSP connection's `$` frames) and whole access
  units with their timestamps (`push_au`, `set_params`,
  `set_audio_config`), which give the same ring entries;
- in-band parameter-set changes: a new description for the readers;
- byte and packet counts (`count`, `stats`); `count` is the one place
  a source's read is seen, so it also holds a live source's socket in the
  shard's read gate (`read_in_windows`: `ingest_window`, or
  `unwatched_ingest_window` while nobody wants it read at once: no front
  reads it, and its taps are HLS segmenters and recordings, not LL-HLS);
- liveness: one timer per session, started by a source that has none of
  its own (`start`: a pull's; an RTSP publisher's is its server engine's
  session timer, which reads `seen`); traffic only sets a flag, the clock
  is read in the tick (`check(now)`, testable without a loop). No traffic
  for `timeout` seconds ends the source (`on_timeout`); the source's own
  periodic work (a pull's keep-alives) rides on the same tick (`on_tick`).

A source creates its session with the path, its peer address and itself
(`StreamTable.close` → `source.close()`), and calls `close()` on it when it
ends: the stream ends for its readers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Iterable, Protocol

from ..media.rtsp import NEED_DATA, InterleavedFrame, RtspReader, RtspRequest, RtspResponse
from ..media.stream_desc import TrackDesc
from .read_gate import HeldSocket, ReadGate
from .rtp_in import IngestStats, TrackIngest
from .sdp_tracks import SdpFor, tracks_sdp
from .stream import Stream
from .streams import StreamTable

log = logging.getLogger("hub.shard.ingest")

__all__ = ["IngestSession", "IngestSource", "PacketSink", "MAX_TICK", "MIN_TICK"]

MAX_TICK = 5.0  # the liveness check runs at least this often
MIN_TICK = 0.02

#: Takes one RTP or RTCP packet (a view that is reused after the call).
PacketSink = Callable[[bytes | bytearray | memoryview], None]


class IngestSource(Protocol):
    """What a session needs of its source: a way to stop it for good
    (the stream was deleted, or another source took the path)."""

    def close(self) -> None: ...


class IngestSession:
    """The stream side of one source, from its connection to its end."""

    def __init__(self, streams: StreamTable, path: str, addr: str, source: IngestSource, *,
                 timeout: float, clock: Callable[[], float] = time.monotonic,
                 on_timeout: Callable[[], None] | None = None,
                 on_tick: Callable[[float], None] | None = None) -> None:
        self.streams = streams
        self.path = path
        self.addr = addr
        self.source = source
        self.timeout = timeout
        self.clock = clock
        self.on_timeout = on_timeout if on_timeout is not None else source.close
        self.on_tick = on_tick
        self.stream: Stream | None = None
        self.tracks: list[TrackDesc] = []  # as published (index = ring track)
        self.ingests: list[TrackIngest] = []
        #: Interleaved channel → sink; replaced in place only, so a read being
        #: drained sees the tracks that went live in the middle of it.
        #: Their sinks may keep views of a frame: it is given as bytes, or a
        #: view of bytes, that stay as they are (`receive_frames`, the reader).
        self.channels: list[PacketSink | None] = [None] * 256
        self.bytes_in = 0
        self.seen = False  # traffic since the last tick
        self.last_seen = clock()
        self.closed = False
        self._sdp_for: SdpFor = tracks_sdp
        self._timer: asyncio.TimerHandle | None = None
        self._interval = MAX_TICK
        #: The source's TCP socket in the shard's read gate (`ingest_window`),
        #: set by the source (`read_in_windows`); held after each read once live,
        #: always or (`unwatched_ingest_window`) while nobody reads the stream.
        self.held: HeldSocket | None = None
        self.hold_always = True

    def read_in_windows(self, gate: ReadGate | None, transport: asyncio.BaseTransport) -> None:
        """With the shard's read gate: this source's reads on `transport`
        wait for the gate once the stream is live, always (`ingest_window`)
        or while nobody reads the stream (`unwatched_ingest_window`)."""
        if gate is not None:
            self.held = gate.socket_of(transport)
            self.hold_always = gate.always

    @property
    def live(self) -> bool:
        return self.stream is not None and not self.stream.closed

    # -- traffic --------------------------------------------------------------
    def count(self, n: int) -> None:
        """`n` bytes from the source (as read: headers, requests and all).
        A live source that reads in windows is held until the next one
        (with `unwatched_ingest_window`, only while nobody wants its stream
        read at once: `Stream.watched`)."""
        self.bytes_in += n
        self.seen = True
        stream = self.stream
        if stream is not None:
            stream.size += n
            held = self.held
            if held is not None and (self.hold_always or not stream.watched):
                held.hold()

    def _watched(self) -> None:
        """Someone reads the stream now: a socket held because nobody did
        (`unwatched_ingest_window`) reads at once, not at the window's end."""
        held = self.held
        if held is not None and not self.hold_always:
            held.release()

    def receive_frames(self, data: bytes) -> int:
        """The whole `$` frames at the start of `data`, a read that starts
        where the last event ended, to their tracks as views of `data`: no
        copy, no event objects, no reader — the publisher's hot path.
        Returns where the first byte not consumed is (a request, a response,
        or a frame the read cut): the rest is the RTSP reader's to parse.
        Does not count the bytes (`count` does)."""
        channels = self.channels
        view = memoryview(data)
        n = len(data)
        pos = 0
        while n - pos >= 4 and data[pos] == 0x24 and not self.closed:
            end = pos + 4 + ((data[pos + 2] << 8) | data[pos + 3])
            if end > n:
                break
            sink = channels[data[pos + 1]]
            if sink is not None:
                sink(view[pos + 4:end])
            pos = end
        return pos

    def receive_rtsp(self, data: bytes, reader: RtspReader,
                     on_message: Callable[[RtspRequest | RtspResponse], None]) -> None:
        """Bytes of an RTSP connection: counted, `$` frames to their tracks'
        sinks, requests and responses to `on_message`. Stops when the
        session closes; a malformed message raises ProtocolError."""
        self.count(len(data))
        if not reader.buffered:
            done = self.receive_frames(data)
            if done == len(data):
                return
            reader.feed(memoryview(data)[done:])
        else:
            reader.feed(data)
        channels = self.channels
        while not self.closed:
            event = reader.next_event()
            if event is NEED_DATA:
                return
            if type(event) is InterleavedFrame:
                sink = channels[event.channel]
                if sink is not None:
                    sink(event.payload)
            elif isinstance(event, (RtspRequest, RtspResponse)):
                on_message(event)

    # -- going live -------------------------------------------------------------
    def go_live(self, tracks: list[TrackDesc], sdp_for: SdpFor | None = None) -> Stream:
        """Publish the path with `tracks` (indexes 0..n-1): the source says when.

        `sdp_for(tracks)` writes the players' SDP, now and after each
        parameter change (default: from the tracks alone). Any track
        bindings of an earlier stream of this session are dropped.
        """
        if self.closed:
            raise RuntimeError("ingest session is closed")
        self._sdp_for = sdp_for if sdp_for is not None else tracks_sdp
        self.tracks = list(tracks)
        stream = self.streams.publish(self.path, self._sdp_for(self.tracks), list(self.tracks),
                                      addr=self.addr, source=self.source)
        stream.size = self.bytes_in
        stream.on_watch = self._watched
        self.stream = stream
        audio_only = not any(t.kind == "video" for t in self.tracks)
        started = self.clock()
        self.ingests = [TrackIngest(stream, i, desc, audio_only=audio_only, on_params=self._params_changed,
                                    started=started, clock=self.clock)
                        for i, desc in enumerate(self.tracks)]
        self.channels[:] = [None] * 256
        return stream

    def bind_interleaved(self, track: int, pair: tuple[int, int]) -> None:
        """Interleaved channels (RTP, RTCP) that carry `track`: their frames
        are bytes, or views of a read's bytes, that stay as they are."""
        ingest = self.ingests[track]
        self.channels[pair[0]], self.channels[pair[1]] = ingest.push_rtp_view, ingest.push_rtcp

    def rtp_sinks(self, track: int) -> tuple[PacketSink, PacketSink]:
        """(RTP sink, RTCP sink) of `track`, for a transport of its own (UDP)."""
        ingest = self.ingests[track]
        return ingest.push_rtp, ingest.push_rtcp

    # -- whole access units --------------------------------------------------------
    def push_au(self, track: int, data: bytes | bytearray | memoryview, pts: int, dts: int | None = None, *,
                length_size: int = 4) -> None:
        """An access unit that arrived whole (see `TrackIngest.push_au`)."""
        self.ingests[track].push_au(data, pts, dts, length_size=length_size)

    def set_params(self, track: int, nals: Iterable[bytes | bytearray | memoryview]) -> None:
        """H.264/H.265 parameter sets out of band (a decoder configuration record)."""
        self.ingests[track].set_params(nals)

    def set_audio_config(self, track: int, asc: bytes) -> None:
        """A new AAC AudioSpecificConfig; ProtocolError when it does not parse."""
        self.ingests[track].set_audio_config(asc)

    # -- parameter changes ---------------------------------------------------------
    def _params_changed(self, index: int, desc: TrackDesc) -> None:
        """New parameter sets: a new description for the readers."""
        stream = self.stream
        if stream is None or stream.closed:
            return
        self.tracks[index] = desc
        stream.update_tracks(list(self.tracks), self._sdp_for(self.tracks))
        log.info("%s: track %d parameters changed (%s %dx%d)", self.path, index, desc.codec,
                 desc.width, desc.height)

    # -- counts ----------------------------------------------------------------------
    def stats(self) -> IngestStats:
        """The packet and entry counts of all tracks together."""
        total = IngestStats()
        for ingest in self.ingests:
            total.add(ingest.stats)
        return total

    # -- liveness ----------------------------------------------------------------------
    def start(self, max_tick: float = MAX_TICK) -> None:
        """Run the liveness tick from now on, at least every `max_tick` seconds."""
        self.last_seen = self.clock()
        self._interval = max(MIN_TICK, min(max_tick, self.timeout / 4))
        if self._timer is None and not self.closed:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.check(self.clock()):
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._on_timer)

    def check(self, now: float) -> bool:
        """One tick at `now`; False when the session is over.

        Traffic since the last tick moves `last_seen` to `now`; none for
        `timeout` seconds calls `on_timeout` (which ends the source). Then the
        source's `on_tick(now)`.
        """
        if self.closed:
            return False
        if self.seen:
            self.seen = False
            self.last_seen = now
        elif now - self.last_seen >= self.timeout:
            log.info("%s: nothing from %s for %g s", self.path, self.addr, self.timeout)
            self.on_timeout()
            return not self.closed
        if self.on_tick is not None:
            self.on_tick(now)
        return not self.closed

    # -- the end -------------------------------------------------------------------------
    def close(self) -> None:
        """The source ended: no more ticks, no more packets, the stream ends."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.held is not None:
            self.held.forget()  # its socket is closing: no window for it
        self.channels[:] = [None] * 256
        stream = self.stream
        if stream is not None and not stream.closed:
            stream.close()
