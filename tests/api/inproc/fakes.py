"""What the in-process front tests stand in for: the socket (a transport
that records what it is asked to do, uvicorn's MockTransport way) and the
owning shard (answers `open_stream`/`describe` from a real ring). The ring,
the views, the fan-outs, the consumers and the RTSP engine are the real ones."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Coroutine

from hub.api.context import FrontContext
from hub.child import ChildArgs
from hub.config import Config

from hub.api.shards import ShardLinks
from hub.errors import NotFound
from hub.ipc.methods import Ask, Tell
from hub.media.flv import TAG_AUDIO, TAG_VIDEO, FlvReader, FlvTag, parse_audio, parse_video
from hub.media.rtsp import NEED_DATA, InterleavedFrame, RtspReader, RtspResponse
from hub.media.stream_desc import AUDIO_AAC, StreamDesc, TrackDesc
from hub.media.websocket import BINARY, mask
from hub.ring import RingWriter, cleanup_stale
from tests.shard.ingest_helpers import PPS, SPS

#: AAC LC, 44.1 kHz, stereo.
ASC = bytes.fromhex("1210")
#: Bytes past which asyncio calls pause_writing by default (64 KiB).
HIGH_WATER = 64 * 1024


class FakeTransport(asyncio.Transport):
    """Records writes, reading paused or not, closes and aborts.

    `buffered` is what the kernel has not taken yet (get_write_buffer_size):
    a test sets it with `fill` (a client that stopped reading: the protocol
    is told `pause_writing` past the high-water mark, as asyncio does) and
    clears it with `drain`. `close` ends the connection on the next loop
    turn (`connection_lost`), like a socket transport."""

    def __init__(self, peer: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        super().__init__()
        self.peer = peer
        self.out = bytearray()
        self.writes = 0
        self.buffered = 0
        self.reading = True
        self.pauses = 0
        self.closing = False
        self.aborted = False
        self.lost = False
        self.limits: tuple[int | None, int | None] | None = None
        self.protocol: asyncio.BaseProtocol | None = None
        self._writing_paused = False

    # -- what the code under test calls -------------------------------------------
    def write(self, data: Any) -> None:
        assert not self.closing, "written after close"
        self.out += data
        self.writes += 1

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.limits = (high, low)

    def pause_reading(self) -> None:
        if self.reading:
            self.pauses += 1
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        asyncio.get_running_loop().call_soon(self._lose)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        # No "socket": nothing to set a send buffer on, nothing to hand over.
        return {"peername": self.peer, "sockname": ("127.0.0.1", 1554)}.get(name, default)

    # -- what the tests call ----------------------------------------------------------
    def connect(self, protocol: asyncio.Protocol) -> None:
        self.protocol = protocol
        protocol.connection_made(self)

    def take(self) -> bytes:
        out = bytes(self.out)
        self.out.clear()
        return out

    def fill(self, n: int) -> None:
        self.buffered = n
        if n > HIGH_WATER and not self._writing_paused and self.protocol is not None:
            self._writing_paused = True
            self.protocol.pause_writing()

    def drain(self) -> None:
        self.buffered = 0
        if self._writing_paused and self.protocol is not None:
            self._writing_paused = False
            self.protocol.resume_writing()

    def hang_up(self) -> None:
        """The peer closed the connection (or it broke): connection_lost now."""
        self.closing = True
        self._lose()

    def _lose(self) -> None:
        if not self.lost:
            self.lost = True
            if self.protocol is not None:
                self.protocol.connection_lost(None)


class OneShard(ShardLinks):
    """The owning shard of the streams in `streams`: answers `open_stream`
    and `describe` with their current description (others: 404), and keeps
    the notices it is sent."""

    def __init__(self, *streams: Stream, delay: float = 0.0) -> None:
        super().__init__(1)
        self.streams = {s.desc.path: s for s in streams}
        self.delay = delay
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.notices: list[tuple[str, dict[str, Any]]] = []

    async def request(self, path: str, msg: Ask[Any], timeout: float = 5.0) -> Any:
        method, args = msg[0].name, dict(msg[1])
        self.asked.append((method, args))
        if self.delay:
            await asyncio.sleep(self.delay)
        stream = self.streams.get(path)
        if stream is None or stream.ended:
            raise NotFound("404 page not found")
        assert method in ("open_stream", "describe"), method
        return stream.desc.to_wire()

    def notify(self, path: str, msg: Tell) -> None:
        self.notices.append((msg[0].name, dict(msg[1])))

    def opens(self) -> int:
        return sum(1 for m, _ in self.asked if m == "open_stream")


def h264_frame(key: bool, size: int = 200, fill: int = 0) -> bytes:
    """One access unit in AVCC: an IDR or a non-IDR slice whose first
    macroblock is 0 (so a depacketiser sees a picture start)."""
    nal = bytes((0x65 if key else 0x41, 0x88)) + bytes((fill + i) & 0xFF for i in range(size - 2))
    return len(nal).to_bytes(4, "big") + nal


@dataclass
class Stream:
    """A live stream as its shard would hold it: a real ring and its description."""

    path: str = "/live/x"
    stream_id: int = 7 << 8
    audio: bool = True
    writer: RingWriter = field(init=False)
    desc: StreamDesc = field(init=False)
    ended: bool = False

    def __post_init__(self) -> None:
        name = f"hubtest-{uuid.uuid4().hex[:12]}"
        self.writer = RingWriter.create(name, slots=256, data_size=1 << 20)
        tracks = [TrackDesc(0, "video", "H264", 96, 90000, sps=SPS, pps=PPS, width=640, height=360,
                            framerate=25.0)]
        if self.audio:
            tracks.append(TrackDesc(1, "audio", AUDIO_AAC, 97, 44100, 2, asc=ASC, sample_rate=44100))
        sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=0\r\n"
        self.desc = StreamDesc(self.stream_id, self.path, name, 1, sdp, tracks)
        self.writer.set_description_version(1)

    def video(self, key: bool, pts: int, size: int = 200) -> tuple[int, bytes]:
        data = h264_frame(key, size, fill=pts & 0xFF)
        return self.writer.write(data, track=0, keyframe=key, pts=pts, dts=pts), data

    def sound(self, pts: int, size: int = 60) -> tuple[int, bytes]:
        data = bytes((pts + i) & 0xFF for i in range(size))
        return self.writer.write(data, track=1, keyframe=False, pts=pts, dts=pts), data

    def new_params(self, pps: bytes) -> None:
        """In-band parameter sets changed: a new description version."""
        self.desc = replace(self.desc, version=self.desc.version + 1,
                            tracks=[replace(self.desc.tracks[0], pps=pps), *self.desc.tracks[1:]])
        self.writer.set_description_version(self.desc.version)

    def end(self) -> None:
        self.ended = True
        self.writer.close()

    def remove(self) -> None:
        if not self.ended:
            self.end()
        cleanup_stale(self.desc.ring)


async def until(check: Callable[[], object], turns: int = 50) -> None:
    """Let the loop run until `check()` holds (bounded: fails after `turns`)."""
    for _ in range(turns):
        if check():
            return
        await asyncio.sleep(0)
    assert check(), "not reached in time"


def run(coro: Coroutine[Any, Any, None], timeout: float = 5.0) -> None:
    """One test's loop, bounded."""
    async def bounded() -> None:
        await asyncio.wait_for(coro, timeout)
    asyncio.run(bounded())


def make_front(shard: OneShard, config: Config | None = None) -> FrontContext:
    """A real front context (no supervisor link: admission is only noted)
    whose shard links are `shard`."""
    front = FrontContext(ChildArgs("front", 0, -1, "test", "/tmp", config or Config()))
    front.shards = shard
    front.views.shards = shard
    front.hls_live.shards = shard
    return front


# -- reading what was written -------------------------------------------------------------

def flv_events(data: bytes) -> list[Any]:
    r = FlvReader()
    r.feed(data)
    events = r.events()
    assert r.buffered == 0, "a partial FLV tag was written"
    return events


def media(tags: list[FlvTag]) -> list[tuple[str, int, bool, bytes]]:
    """(kind, timestamp, keyframe, payload) of the audio and video frames."""
    out = []
    for tag in tags:
        if tag.tag_type == TAG_VIDEO:
            v = parse_video(tag.data)
            if v.packet_type == 1:
                out.append(("video", tag.timestamp, v.keyframe, v.payload))
        elif tag.tag_type == TAG_AUDIO:
            a = parse_audio(tag.data)
            if a.packet_type == 1:
                out.append(("audio", tag.timestamp, False, a.payload))
    return out


def flv_tags(data: bytes) -> list[FlvTag]:
    """The tags of an FLV body that does not start with the file header."""
    r = FlvReader()
    r.feed(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + data)
    events = r.events()
    assert r.buffered == 0, "a partial FLV tag was written"
    tags = [e for e in events[1:] if isinstance(e, FlvTag)]
    assert len(tags) == len(events) - 1
    return tags


def ws_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Server-to-client WebSocket frames (unmasked, each FIN): (opcode, payload)."""
    out, pos = [], 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b0 & 0xF0 == 0x80, f"not a final frame without extensions: {b0:#x}"
        assert not b1 & 0x80, "a server frame is never masked"
        n, pos = b1 & 0x7F, pos + 2
        if n == 126:
            n, pos = int.from_bytes(data[pos:pos + 2], "big"), pos + 2
        elif n == 127:
            n, pos = int.from_bytes(data[pos:pos + 8], "big"), pos + 8
        assert pos + n <= len(data), "a partial WebSocket frame was written"
        out.append((b0 & 0x0F, data[pos:pos + n]))
        pos += n
    return out


def ws_messages(data: bytes) -> list[bytes]:
    """The payloads of binary frames (anything else fails)."""
    frames = ws_frames(data)
    assert all(op == BINARY for op, _ in frames), [op for op, _ in frames]
    return [p for _, p in frames]


def client_frame(opcode: int, payload: bytes, key: bytes = b"\x11\x22\x33\x44") -> bytes:
    """A small masked client frame."""
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + key + mask(payload, key)


def rtsp_read(data: bytes) -> list[RtspResponse | InterleavedFrame]:
    """What an RTSP client reads: responses and `$` frames, in order."""
    r = RtspReader()
    r.feed(data)
    out: list[RtspResponse | InterleavedFrame] = []
    while (ev := r.next_event()) is not NEED_DATA:
        if isinstance(ev, InterleavedFrame):
            ev = InterleavedFrame(ev.channel, bytes(ev.payload))
        assert isinstance(ev, (RtspResponse, InterleavedFrame)), ev
        out.append(ev)
    assert r.buffered == 0, "a partial message was written"
    return out
