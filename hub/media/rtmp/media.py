"""RTMP audio/video messages to codec-level units.

An RTMP audio or video message body is exactly an FLV tag body (the FLV tag
header is what RTMP's chunk header replaces), so the layouts are FLV's
(``hub/media/flv.py`` holds their constants):

* H.264: frame type and codec id 7, packet type (0 AVCDecoderConfigurationRecord,
  1 NAL units in AVCC, 2 end of sequence), signed 24-bit composition time;
* H.265, legacy: the same layout with codec id 12;
* H.265, Enhanced RTMP: IsExHeader bit, frame type, packet type
  (SequenceStart = hvcC, CodedFrames with a composition time, CodedFramesX
  without, SequenceEnd, Metadata), then the FourCC ``hvc1``;
* AAC: sound format 10, packet type 0 AudioSpecificConfig or 1 raw frame;
  G.711 A-law/µ-law (formats 7/8) are passed as raw frames.

:func:`parse_media` turns one message into a :class:`MediaUnit` — or None
for what carries no unit (end of sequence, metadata, command frames, codecs
we do not ingest). Units hold a view into the message body: no copy is made
here, and the body is never reused by the reader. A malformed body, or AVCC
whose NAL lengths do not add up, raises :class:`RtmpProtocolError`.
"""

from __future__ import annotations

import struct
from typing import Literal

from hub.media.flv import (
    CODEC_AVC, CODEC_HEVC_LEGACY, EX_HEADER, FOURCC_HEVC, FRAME_KEY, PKT_CODED_FRAMES,
    PKT_CODED_FRAMES_X, PKT_SEQUENCE_START, SOUND_AAC, SOUND_G711A, SOUND_G711U,
)

from .constants import MAX_RECORD_NALS, MSG_AUDIO, MSG_VIDEO, RtmpProtocolError

#: Legacy AVC packet type 0/1/2 and Enhanced-RTMP packet types beyond flv.py's.
AVC_SEQUENCE_HEADER = 0
AVC_NALU = 1
AVC_END_OF_SEQUENCE = 2
FRAME_COMMAND = 5
SOUND_EX_HEADER = 9
AAC_SEQUENCE_HEADER = 0
AAC_RAW = 1

VideoCodec = Literal["h264", "h265"]
AudioCodec = Literal["aac", "pcma", "pcmu"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class MediaUnit:
    """One codec-level unit from a publisher.

    ``dts``/``pts`` are milliseconds (the RTMP timestamp, 32-bit, and that plus
    the composition time). With ``config`` set, ``data`` is the decoder
    configuration record (avcC, hvcC or AudioSpecificConfig); otherwise one
    access unit in AVCC (4-byte lengths) or one raw audio frame.

    A plain class, not a dataclass: the publisher's path is compiled
    (hub/compiled.py), and mypyc cannot build a dataclass with a
    `memoryview` field (KeyError at import). Never changed once made.
    """

    __slots__ = ("kind", "codec", "dts", "pts", "keyframe", "config", "data")

    def __init__(self, kind: Literal["video", "audio"], codec: VideoCodec | AudioCodec, dts: int, pts: int,
                 keyframe: bool, config: bool, data: memoryview) -> None:
        self.kind: Literal["video", "audio"] = kind
        self.codec: VideoCodec | AudioCodec = codec
        self.dts = dts
        self.pts = pts
        self.keyframe = keyframe
        self.config = config
        self.data = data

    def __repr__(self) -> str:
        return (f"MediaUnit(kind={self.kind!r}, codec={self.codec!r}, dts={self.dts}, pts={self.pts}, "
                f"keyframe={self.keyframe}, config={self.config}, data=<{len(self.data)} bytes>)")


def _si24(b: memoryview, at: int) -> int:
    v = b[at] << 16 | b[at + 1] << 8 | b[at + 2]
    return v - (1 << 24) if v & 0x800000 else v


def check_avcc(data: memoryview) -> None:
    """Raise unless ``data`` is whole 4-byte-length-prefixed NAL units."""
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 4:
            raise RtmpProtocolError("RTMP: truncated NAL length in a video frame")
        size = _U32.unpack_from(data, pos)[0]
        pos += 4 + size
        if size == 0 or pos > end:
            raise RtmpProtocolError("RTMP: bad NAL length in a video frame")


def _video_config(codec: VideoCodec, data: memoryview) -> None:
    if codec == "h264":
        if len(data) < 7 or data[0] != 1:
            raise RtmpProtocolError("RTMP: bad AVCDecoderConfigurationRecord")
        length_size = (data[4] & 3) + 1
    else:
        if len(data) < 23 or data[0] != 1:
            raise RtmpProtocolError("RTMP: bad HEVCDecoderConfigurationRecord")
        length_size = (data[21] & 3) + 1
    if length_size != 4:
        raise RtmpProtocolError(f"RTMP: {length_size}-byte NAL lengths are not supported")


def _video(ts: int, body: memoryview) -> MediaUnit | None:
    if not body:
        raise RtmpProtocolError("RTMP: empty video message")
    b0 = body[0]
    codec: VideoCodec
    if b0 & EX_HEADER:
        if len(body) < 5:
            raise RtmpProtocolError("RTMP: short Enhanced RTMP video header")
        frame_type = (b0 >> 4) & 7
        packet_type = b0 & 0x0F
        if body[1:5] != FOURCC_HEVC or frame_type == FRAME_COMMAND:
            return None  # another FourCC (av01, vp09...) or a command frame
        codec = "h265"
        if packet_type == PKT_SEQUENCE_START:
            cts, data, config = 0, body[5:], True
        elif packet_type == PKT_CODED_FRAMES:
            if len(body) < 8:
                raise RtmpProtocolError("RTMP: short Enhanced RTMP coded frame")
            cts, data, config = _si24(body, 5), body[8:], False
        elif packet_type == PKT_CODED_FRAMES_X:
            cts, data, config = 0, body[5:], False
        else:
            return None  # SequenceEnd, Metadata, MPEG-2 TS start, multitrack
    else:
        frame_type = b0 >> 4
        codec_id = b0 & 0x0F
        if frame_type == FRAME_COMMAND or codec_id not in (CODEC_AVC, CODEC_HEVC_LEGACY):
            return None
        if len(body) < 5:
            raise RtmpProtocolError("RTMP: short AVC video header")
        codec = "h264" if codec_id == CODEC_AVC else "h265"
        packet_type = body[1]
        if packet_type == AVC_END_OF_SEQUENCE:
            return None
        if packet_type not in (AVC_SEQUENCE_HEADER, AVC_NALU):
            raise RtmpProtocolError(f"RTMP: unknown AVC packet type {packet_type}")
        config = packet_type == AVC_SEQUENCE_HEADER
        cts, data = (0 if config else _si24(body, 2)), body[5:]
    if config:
        _video_config(codec, data)
    else:
        if not data:
            return None
        check_avcc(data)
    return MediaUnit("video", codec, ts, ts + cts, frame_type == FRAME_KEY or config, config, data)


def _audio(ts: int, body: memoryview) -> MediaUnit | None:
    if not body:
        raise RtmpProtocolError("RTMP: empty audio message")
    fmt = body[0] >> 4
    if fmt == SOUND_AAC:
        if len(body) < 2:
            raise RtmpProtocolError("RTMP: short AAC audio header")
        packet_type = body[1]
        data = body[2:]
        if packet_type == AAC_SEQUENCE_HEADER:
            if len(data) < 2:
                raise RtmpProtocolError("RTMP: AudioSpecificConfig too short")
            return MediaUnit("audio", "aac", ts, ts, True, True, data)
        if packet_type != AAC_RAW:
            raise RtmpProtocolError(f"RTMP: unknown AAC packet type {packet_type}")
        return MediaUnit("audio", "aac", ts, ts, True, False, data) if data else None
    if fmt in (SOUND_G711A, SOUND_G711U):
        data = body[1:]
        codec: AudioCodec = "pcma" if fmt == SOUND_G711A else "pcmu"
        return MediaUnit("audio", codec, ts, ts, True, False, data) if data else None
    return None  # MP3, Speex, Enhanced RTMP audio (Opus, FLAC...): not ingested


def parse_media(type_id: int, timestamp: int, body: bytes | bytearray | memoryview
                ) -> MediaUnit | None:
    """One audio (8) or video (9) message body to a unit, or None."""
    view = memoryview(body)
    if type_id == MSG_VIDEO:
        return _video(timestamp, view)
    if type_id == MSG_AUDIO:
        return _audio(timestamp, view)
    raise RtmpProtocolError(f"RTMP: type {type_id} is not audio or video")


# --- decoder configuration records (ISO/IEC 14496-15) ---------------------------


class _Cursor:
    __slots__ = ("data", "pos", "nal_count")

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.nal_count = 0  # declared so far, checked before any is read

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise RtmpProtocolError("RTMP: truncated decoder configuration record")
        out = bytes(self.data[self.pos:end])
        self.pos = end
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def nals(self, count: int) -> list[bytes]:
        self.nal_count += count
        if self.nal_count > MAX_RECORD_NALS:
            raise RtmpProtocolError("RTMP: too many parameter sets in a decoder configuration record")
        return [self.take(self.u16()) for _ in range(count)]


def avc_parameter_sets(record: bytes | memoryview) -> tuple[list[bytes], list[bytes]]:
    """(SPS list, PPS list) out of an AVCDecoderConfigurationRecord."""
    cur = _Cursor(record)
    if cur.u8() != 1:
        raise RtmpProtocolError("RTMP: AVCDecoderConfigurationRecord version is not 1")
    cur.take(4)  # profile, compatibility, level, length size
    sps = cur.nals(cur.u8() & 0x1F)
    pps = cur.nals(cur.u8())
    return sps, pps


def hevc_parameter_sets(record: bytes | memoryview
                        ) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(VPS, SPS, PPS lists) out of an HEVCDecoderConfigurationRecord."""
    cur = _Cursor(record)
    if cur.u8() != 1:
        raise RtmpProtocolError("RTMP: HEVCDecoderConfigurationRecord version is not 1")
    cur.take(21)
    found: dict[int, list[bytes]] = {32: [], 33: [], 34: []}
    for _ in range(cur.u8()):
        nal_type = cur.u8() & 0x3F
        nals = cur.nals(cur.u16())
        if nal_type in found:
            found[nal_type] += nals
    return found[32], found[33], found[34]
