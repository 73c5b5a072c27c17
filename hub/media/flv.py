"""FLV muxer and incremental reader (HTTP-FLV and WebSocket-FLV).

The muxer is created once per stream per process: every tag it returns
already ends with its 4-byte PreviousTagSize, so the bytes a player receives
are just ``header() + metadata() + sequence headers + tags...`` and the same
``bytes`` object goes to every player of the stream.

H.265 comes in two dialects, chosen by ``hevc_mode``:

* ``"enhanced"`` (default) — Enhanced RTMP v1: the video tag's first byte has
  the IsExHeader bit, a 3-bit frame type and a 4-bit packet type, followed by
  the FourCC ``hvc1``. Stock FFmpeg (7.x and later), mpegts.js and flv.js
  forks with HEVC read it, so it is the default.
* ``"legacy"`` — the pre-standard "codec id 12" form (AVC layout with codec id
  12) that the reference ipchub and some Chinese players use; stock FFmpeg
  cannot read it.

The reader (:class:`FlvReader`) is sans-IO: ``feed()`` bytes, then pull
:class:`FlvHeader` / :class:`FlvTag` events from ``next_event()`` until it
returns ``None``. Anything malformed raises :class:`hub.errors.ProtocolError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, Union

from hub.errors import ProtocolError
from hub.media import amf0

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18

CODEC_AVC = 7
CODEC_HEVC_LEGACY = 12
FOURCC_HEVC = b"hvc1"
#: videocodecid written in onMetaData for Enhanced-RTMP HEVC (FourCC as a number).
HEVC_FOURCC_ID = int.from_bytes(FOURCC_HEVC, "big")

SOUND_AAC = 10
SOUND_G711A = 7
SOUND_G711U = 8

FRAME_KEY = 1
FRAME_INTER = 2

# Enhanced RTMP packet types.
PKT_SEQUENCE_START = 0
PKT_CODED_FRAMES = 1
PKT_SEQUENCE_END = 2
PKT_CODED_FRAMES_X = 3

EX_HEADER = 0x80

HevcMode = Literal["enhanced", "legacy"]

_TAG_HEAD = struct.Struct(">IIBH")  # type<<24|size, ts24<<8|ts_ext, stream id (3 bytes)
_U32 = struct.Struct(">I")
TAG_HEADER_LEN = 11
#: Largest tag payload FLV can express (24-bit DataSize).
MAX_TAG_DATA = 0xFFFFFF
_CTS_MIN = -(1 << 23)
_CTS_MAX = (1 << 23) - 1


def _cts24(cts: int) -> bytes:
    """Signed 24-bit composition time offset, clamped (a wild offset must not
    corrupt the neighbouring bytes)."""
    cts = max(_CTS_MIN, min(_CTS_MAX, cts))
    return (cts & 0xFFFFFF).to_bytes(3, "big")


class FlvMuxer:
    """Turns a stream's access units into FLV tags (each with its PreviousTagSize).

    ``video_codec`` is ``"h264"``, ``"h265"`` or ``None``. Timestamps are
    milliseconds; they are written modulo 2**32 (24 bits + extension byte).
    """

    __slots__ = ("video_codec", "hevc_mode", "_key_byte", "_inter_byte", "_seq_head",
                 "_enhanced", "_ex_heads")

    def __init__(self, video_codec: Literal["h264", "h265"] | None = "h264",
                 hevc_mode: HevcMode = "enhanced") -> None:
        if hevc_mode not in ("enhanced", "legacy"):
            raise ValueError(f"unknown hevc_mode {hevc_mode!r}")
        self.video_codec = video_codec
        self.hevc_mode = hevc_mode
        self._enhanced = video_codec == "h265" and hevc_mode == "enhanced"
        codec = CODEC_HEVC_LEGACY if video_codec == "h265" else CODEC_AVC
        self._key_byte = FRAME_KEY << 4 | codec
        self._inter_byte = FRAME_INTER << 4 | codec
        self._seq_head = bytes((self._key_byte, 0, 0, 0, 0))
        # Enhanced-RTMP heads indexed by [keyframe][with composition time], built once.
        self._ex_heads = tuple(
            tuple(bytes((EX_HEADER | (FRAME_KEY if key else FRAME_INTER) << 4
                         | (PKT_CODED_FRAMES if cts else PKT_CODED_FRAMES_X),)) + FOURCC_HEVC
                  for cts in (False, True))
            for key in (False, True))

    @staticmethod
    def _tag(tag_type: int, ts_ms: int, *parts: bytes | bytearray | memoryview) -> bytes:
        size = 0
        for p in parts:
            size += len(p)
        if size > MAX_TAG_DATA:
            raise ValueError("FLV tag payload larger than 16 MiB")
        ts = ts_ms & 0xFFFFFFFF
        head = _TAG_HEAD.pack(tag_type << 24 | size, (ts & 0xFFFFFF) << 8 | ts >> 24, 0, 0)
        return b"".join((head, *parts, _U32.pack(TAG_HEADER_LEN + size)))

    @staticmethod
    def header(has_video: bool, has_audio: bool) -> bytes:
        """The 9-byte file header plus PreviousTagSize0."""
        flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
        return bytes((0x46, 0x4C, 0x56, 1, flags, 0, 0, 0, 9, 0, 0, 0, 0))

    def metadata(self, width: int | None, height: int | None, framerate: float | None,
                 video_codec_id: int | None, audio_codec_id: int | None,
                 audio_sample_rate: int | None, audio_channels: int | None,
                 audio_sample_size: int | None = 16,
                 creator: str = "ipchub stream media server") -> bytes:
        """The ``onMetaData`` script tag. Video fields are left out when
        ``video_codec_id`` is None, audio fields when ``audio_codec_id`` is None."""
        meta = amf0.EcmaArray()
        if video_codec_id is not None:
            if width:
                meta["width"] = width
            if height:
                meta["height"] = height
            if framerate:
                meta["framerate"] = framerate
            meta["videocodecid"] = video_codec_id
        if audio_codec_id is not None:
            if audio_sample_rate:
                meta["audiosamplerate"] = audio_sample_rate
            if audio_sample_size:
                meta["audiosamplesize"] = audio_sample_size
            if audio_channels:
                meta["stereo"] = audio_channels > 1
            meta["audiocodecid"] = audio_codec_id
        meta["creator"] = creator
        return self._tag(TAG_SCRIPT, 0, amf0.encode("onMetaData", meta))

    def video_sequence_header(self, config_record: bytes, ts_ms: int = 0) -> bytes:
        """The decoder configuration (avcC or hvcC) as a sequence-start tag."""
        if self._enhanced:
            head = bytes((EX_HEADER | FRAME_KEY << 4 | PKT_SEQUENCE_START,)) + FOURCC_HEVC
            return self._tag(TAG_VIDEO, ts_ms, head, config_record)
        return self._tag(TAG_VIDEO, ts_ms, self._seq_head, config_record)

    def video_tag(self, au_avcc: bytes | memoryview, dts_ms: int, pts_ms: int,
                  keyframe: bool) -> bytes:
        """One access unit (AVCC: 4-byte lengths) as a video tag."""
        cts = pts_ms - dts_ms
        if self._enhanced:
            if cts == 0:  # CodedFramesX: no composition time, 3 bytes saved
                return self._tag(TAG_VIDEO, dts_ms, self._ex_heads[keyframe][False], au_avcc)
            return self._tag(TAG_VIDEO, dts_ms, self._ex_heads[keyframe][True], _cts24(cts),
                             au_avcc)
        first = self._key_byte if keyframe else self._inter_byte
        head = bytes((first, 1)) + _cts24(cts)
        return self._tag(TAG_VIDEO, dts_ms, head, au_avcc)

    def video_end_of_sequence(self, ts_ms: int) -> bytes:
        """End-of-sequence tag (sent before switching parameters or closing)."""
        if self._enhanced:
            head = bytes((EX_HEADER | FRAME_KEY << 4 | PKT_SEQUENCE_END,)) + FOURCC_HEVC
            return self._tag(TAG_VIDEO, ts_ms, head)
        return self._tag(TAG_VIDEO, ts_ms, bytes((self._key_byte, 2, 0, 0, 0)))

    def audio_sequence_header(self, asc_bytes: bytes, ts_ms: int = 0) -> bytes:
        """The AAC AudioSpecificConfig. The flags byte always says 44 kHz/16-bit/
        stereo: for AAC the FLV spec makes the decoder take them from the ASC."""
        return self._tag(TAG_AUDIO, ts_ms, b"\xAF\x00", asc_bytes)

    def audio_tag(self, raw_aac: bytes | memoryview, ts_ms: int) -> bytes:
        """One raw AAC frame (no ADTS header)."""
        return self._tag(TAG_AUDIO, ts_ms, b"\xAF\x01", raw_aac)

    def g711_tag(self, payload: bytes | memoryview, ts_ms: int, alaw: bool) -> bytes:
        """G.711 audio: sound format 7 (A-law) or 8 (µ-law), rate bits 0 (8 kHz is
        implied by the format), 16-bit, mono — what FFmpeg's muxer writes."""
        flags = (SOUND_G711A if alaw else SOUND_G711U) << 4 | 0x02
        return self._tag(TAG_AUDIO, ts_ms, bytes((flags,)), payload)


# --- reader -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlvHeader:
    version: int
    has_audio: bool
    has_video: bool


@dataclass(frozen=True, slots=True)
class FlvTag:
    tag_type: int
    timestamp: int  # milliseconds, with the extension byte
    data: bytes


@dataclass(frozen=True, slots=True)
class FlvVideo:
    """A video tag body taken apart. ``codec`` is the legacy codec id (7, 12)
    or the Enhanced-RTMP FourCC (``b"hvc1"``)."""

    frame_type: int
    codec: int | bytes
    packet_type: int  # 0 sequence header/start, 1 frames, 2 end, 3 frames without cts
    cts: int
    payload: bytes

    @property
    def keyframe(self) -> bool:
        return self.frame_type == FRAME_KEY


@dataclass(frozen=True, slots=True)
class FlvAudio:
    sound_format: int
    rate: int
    size_16bit: bool
    stereo: bool
    packet_type: int | None  # AAC only: 0 sequence header, 1 raw
    payload: bytes


FlvEvent = Union[FlvHeader, FlvTag]


def _need(data: bytes, n: int, what: str) -> None:
    if len(data) < n:
        raise ProtocolError(f"FLV: {what} too short")


def parse_video(data: bytes) -> FlvVideo:
    """Take a video tag body apart (both the legacy and the Enhanced-RTMP form)."""
    _need(data, 1, "video tag")
    first = data[0]
    if first & EX_HEADER:
        _need(data, 5, "enhanced video tag")
        frame_type = (first >> 4) & 7
        packet_type = first & 0x0F
        fourcc = data[1:5]
        if packet_type == PKT_CODED_FRAMES:
            _need(data, 8, "enhanced video tag")
            cts = int.from_bytes(data[5:8], "big", signed=True)
            return FlvVideo(frame_type, fourcc, packet_type, cts, data[8:])
        return FlvVideo(frame_type, fourcc, packet_type, 0, data[5:])
    frame_type, codec = first >> 4, first & 0x0F
    if codec in (CODEC_AVC, CODEC_HEVC_LEGACY):
        _need(data, 5, "AVC video tag")
        cts = int.from_bytes(data[2:5], "big", signed=True)
        return FlvVideo(frame_type, codec, data[1], cts, data[5:])
    return FlvVideo(frame_type, codec, PKT_CODED_FRAMES, 0, data[1:])


def parse_audio(data: bytes) -> FlvAudio:
    """Take an audio tag body apart."""
    _need(data, 1, "audio tag")
    first = data[0]
    fmt = first >> 4
    if fmt == SOUND_AAC:
        _need(data, 2, "AAC audio tag")
        return FlvAudio(fmt, (first >> 2) & 3, bool(first & 2), bool(first & 1), data[1],
                        data[2:])
    return FlvAudio(fmt, (first >> 2) & 3, bool(first & 2), bool(first & 1), None, data[1:])


def parse_script(data: bytes) -> tuple[str, list[amf0.AmfValue]]:
    """A script tag is an AMF0 string (the handler name) followed by arguments."""
    values = amf0.decode(data)
    if not values or not isinstance(values[0], str):
        raise ProtocolError("FLV: script tag does not start with a name")
    return values[0], values[1:]


class FlvReader:
    """Incremental FLV demuxer: ``feed(bytes)``, then ``next_event()`` until None.

    Strict on purpose (it checks what our server sends): the signature,
    PreviousTagSize values, tag types and the zero stream id are verified.
    ``max_tag`` caps the buffered tag size.
    """

    __slots__ = ("_buf", "_state", "_prev_size", "max_tag")

    def __init__(self, max_tag: int = MAX_TAG_DATA) -> None:
        self._buf = bytearray()
        self._state = 0  # 0 header, 1 previous-tag-size, 2 tag
        self._prev_size = 0
        self.max_tag = max_tag

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_event(self) -> FlvEvent | None:
        while True:
            buf = self._buf
            if self._state == 0:
                if len(buf) < 9:
                    if buf[:3] != b"FLV"[:len(buf)]:
                        raise ProtocolError("FLV: bad signature")
                    return None
                if buf[:3] != b"FLV":
                    raise ProtocolError("FLV: bad signature")
                offset = int.from_bytes(buf[5:9], "big")
                if offset < 9 or offset > 1024:
                    raise ProtocolError("FLV: bad header size")
                if len(buf) < offset:
                    return None
                flags = buf[4]
                header = FlvHeader(buf[3], bool(flags & 4), bool(flags & 1))
                del buf[:offset]
                self._state = 1
                return header
            if self._state == 1:
                if len(buf) < 4:
                    return None
                prev = int.from_bytes(buf[:4], "big")
                if prev != self._prev_size:
                    raise ProtocolError(
                        f"FLV: PreviousTagSize {prev} != {self._prev_size}")
                del buf[:4]
                self._state = 2
                continue
            if len(buf) < TAG_HEADER_LEN:
                if buf and buf[0] & 0xE0:
                    raise ProtocolError("FLV: filtered/reserved tag bits set")
                return None
            tag_type = buf[0]
            if tag_type not in (TAG_AUDIO, TAG_VIDEO, TAG_SCRIPT):
                raise ProtocolError(f"FLV: unknown tag type {tag_type}")
            size = int.from_bytes(buf[1:4], "big")
            if size > self.max_tag:
                raise ProtocolError("FLV: tag too large")
            if buf[8:11] != b"\x00\x00\x00":
                raise ProtocolError("FLV: non-zero stream id")
            end = TAG_HEADER_LEN + size
            if len(buf) < end:
                return None
            ts = int.from_bytes(buf[4:7], "big") | buf[7] << 24
            tag = FlvTag(tag_type, ts, bytes(buf[TAG_HEADER_LEN:end]))
            del buf[:end]
            self._prev_size = end
            self._state = 1
            return tag

    def events(self) -> list[FlvEvent]:
        """Drain every complete event."""
        out: list[FlvEvent] = []
        while (ev := self.next_event()) is not None:
            out.append(ev)
        return out
