"""The initialisation segment: ``ftyp`` + ``moov`` with empty sample tables.

One per stream (per description version): built from the `TrackDesc`s the
shard already has — parameter sets into ``avcC``/``hvcC``, the AAC
AudioSpecificConfig into ``esds`` — with ``mvex``/``trex`` so every sample
lives in movie fragments. Creation times are 0, so the same tracks always
give the same bytes (the recording's range join compares inits byte for byte).
Track IDs are 1 for video and 2 for audio when both are present.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, Sequence

from hub.errors import ProtocolError
from hub.media import h264, h265
from hub.media.aac import AacConfig
from hub.media.codec_config import avc_decoder_config, hevc_decoder_config
from hub.media.mp4.boxes import box, full_box
from hub.media.stream_desc import AUDIO_AAC, TrackDesc

__all__ = [
    "Mp4Track", "mp4_track", "init_segment", "sample_entry", "esds", "ftyp",
    "MOVIE_TIMESCALE", "BRANDS",
]

#: mvhd/mehd time unit: milliseconds are plenty for a whole-movie duration.
MOVIE_TIMESCALE = 1000
#: iso6: trun version 1 (signed composition offsets) and tfdt; mp41 for old readers.
BRANDS = (b"iso6", b"mp41")

_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANG_UND = 0x55C4  # ISO-639-2 "und", 5 bits per letter
_U32 = struct.Struct(">I")

Kind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class Mp4Track:
    """A track as the writer needs it.

    ``timescale`` is the ring's clock for the track (90 kHz video, the sample
    rate for AAC), so ring timestamps go into ``tfdt``/``trun`` unchanged.
    ``frame_duration`` is AAC's samples per frame in that clock (0 for video,
    whose durations come from the next frame's decode time).
    """

    track_id: int
    kind: Kind
    codec: str  # "avc1", "hvc1", "mp4a"
    timescale: int
    entry: bytes  # the stsd sample entry (with its avcC/hvcC/esds)
    width: int = 0
    height: int = 0
    channels: int = 0
    sample_rate: int = 0
    frame_duration: int = 0


def ftyp() -> bytes:
    return box(b"ftyp", BRANDS[0], _U32.pack(0), *BRANDS)


def _visual_entry(kind: bytes, width: int, height: int, config: bytes) -> bytes:
    return box(kind, struct.pack(
        ">6xH2x2x12xHHIIIH32sHh",
        1,  # data_reference_index
        width, height,
        0x00480000, 0x00480000,  # 72 dpi
        0,  # reserved
        1,  # frame_count
        b"",  # compressorname: empty Pascal string
        0x0018,  # depth
        -1,  # pre_defined
    ), config)


def _descriptor(tag: int, *body: bytes) -> bytes:
    """An MPEG-4 descriptor with the shortest expandable length encoding."""
    size = sum(len(b) for b in body)
    if size >= 1 << 28:
        raise ValueError("descriptor too large")
    length = [size & 0x7F]
    size >>= 7
    while size:
        length.append(0x80 | (size & 0x7F))
        size >>= 7
    return b"".join((bytes((tag, *reversed(length))), *body))


def esds(asc: bytes) -> bytes:
    """ES_Descriptor for AAC (ISO/IEC 14496-1 7.2.6.5; 14496-14 3.1.2)."""
    decoder_config = _descriptor(
        0x04,
        bytes((0x40,  # objectTypeIndication: Audio ISO/IEC 14496-3
               0x15)),  # streamType 5 (audio) << 2 | upStream 0 | reserved 1
        b"\x00\x00\x00",  # bufferSizeDB
        b"\x00\x00\x00\x00",  # maxBitrate
        b"\x00\x00\x00\x00",  # avgBitrate
        _descriptor(0x05, asc),  # DecoderSpecificInfo
    )
    es = _descriptor(0x03, b"\x00\x00", b"\x00",  # ES_ID 0 (14496-14: set to 0 in files), flags
                     decoder_config, _descriptor(0x06, b"\x02"))  # SLConfig predefined 2 (MP4)
    return full_box(b"esds", 0, 0, es)


def _audio_entry(channels: int, sample_rate: int, asc: bytes) -> bytes:
    rate = sample_rate << 16 if sample_rate < 0x10000 else 0
    return box(b"mp4a", struct.pack(">6xH8xHHHHI", 1, channels, 16, 0, 0, rate), esds(asc))


def sample_entry(track: TrackDesc) -> tuple[str, bytes, int, int]:
    """(codec 4cc, stsd entry, width, height) for a video track.

    Picture size, chroma format and bit depths come from the SPS; a track
    whose SPS we cannot read keeps the description's size and 4:2:0 8-bit.
    """
    if track.codec == "H264":
        if not track.sps or not track.pps:
            raise ProtocolError("H.264 track without SPS/PPS")
        width, height, chroma, luma, chroma_depth = track.width, track.height, 1, 8, 8
        try:
            sps = h264.parse_sps(track.sps)
            width, height = sps.width, sps.height
            chroma, luma, chroma_depth = sps.chroma_format_idc, sps.bit_depth_luma, sps.bit_depth_chroma
        except ProtocolError:
            pass
        try:
            config = avc_decoder_config([track.sps], [track.pps], chroma_format_idc=chroma,
                                        bit_depth_luma=luma, bit_depth_chroma=chroma_depth)
        except ValueError as e:
            raise ProtocolError(f"H.264: {e}") from None
        return "avc1", _visual_entry(b"avc1", width, height, box(b"avcC", config)), width, height
    if track.codec == "H265":
        if not track.vps or not track.sps or not track.pps:
            raise ProtocolError("H.265 track without VPS/SPS/PPS")
        width, height, chroma, luma, chroma_depth = track.width, track.height, 1, 8, 8
        try:
            hsps = h265.parse_sps(track.sps)
            width, height = hsps.width, hsps.height
            chroma, luma, chroma_depth = hsps.chroma_format_idc, hsps.bit_depth_luma, hsps.bit_depth_chroma
        except ProtocolError:
            pass
        try:
            config = hevc_decoder_config([track.vps], [track.sps], [track.pps],
                                         chroma_format_idc=chroma, bit_depth_luma=luma,
                                         bit_depth_chroma=chroma_depth)
        except ValueError as e:
            raise ProtocolError(f"H.265: {e}") from None
        return "hvc1", _visual_entry(b"hvc1", width, height, box(b"hvcC", config)), width, height
    raise ProtocolError(f"no MP4 sample entry for codec {track.codec}")


def mp4_track(track: TrackDesc, track_id: int) -> Mp4Track:
    """The writer's view of a ring track; ProtocolError when MP4 cannot carry it."""
    if track.clock_rate <= 0 or track.clock_rate > 0xFFFFFFFF:
        raise ProtocolError(f"track clock rate {track.clock_rate}")
    if track.codec in ("H264", "H265"):
        codec, entry, width, height = sample_entry(track)
        return Mp4Track(track_id, "video", codec, track.clock_rate, entry, width, height)
    if track.codec == AUDIO_AAC:
        if not track.asc:
            raise ProtocolError("AAC track without AudioSpecificConfig")
        cfg = AacConfig.parse(track.asc)
        channels = cfg.channels or track.channels or 2
        frame = cfg.frame_length * track.clock_rate // cfg.sample_rate
        if frame <= 0:
            raise ProtocolError("AAC frame shorter than one clock tick")
        return Mp4Track(track_id, "audio", "mp4a", track.clock_rate,
                        _audio_entry(channels, cfg.sample_rate, track.asc),
                        channels=channels, sample_rate=cfg.sample_rate, frame_duration=frame)
    raise ProtocolError(f"no MP4 mapping for codec {track.codec}")


def _trak(t: Mp4Track) -> bytes:
    video = t.kind == "video"
    tkhd = full_box(b"tkhd", 0, 3,  # enabled | in_movie
                    struct.pack(">IIIIIIIhhhH", 0, 0, t.track_id, 0, 0, 0, 0,
                                0, 0, 0 if video else 0x0100, 0),
                    _MATRIX, struct.pack(">II", t.width << 16, t.height << 16))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, t.timescale, 0, _LANG_UND, 0))
    handler, name = (b"vide", b"VideoHandler\x00") if video else (b"soun", b"SoundHandler\x00")
    hdlr = full_box(b"hdlr", 0, 0, _U32.pack(0), handler, bytes(12), name)
    media_header = (full_box(b"vmhd", 0, 1, bytes(8)) if video
                    else full_box(b"smhd", 0, 0, bytes(4)))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, _U32.pack(1), full_box(b"url ", 0, 1)))
    stbl = box(b"stbl",
               full_box(b"stsd", 0, 0, _U32.pack(1), t.entry),
               full_box(b"stts", 0, 0, _U32.pack(0)),
               full_box(b"stsc", 0, 0, _U32.pack(0)),
               full_box(b"stsz", 0, 0, _U32.pack(0), _U32.pack(0)),
               full_box(b"stco", 0, 0, _U32.pack(0)))
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, box(b"minf", media_header, dinf, stbl)))


def init_segment(tracks: Sequence[Mp4Track], duration_ms: int | None = None) -> bytes:
    """``ftyp`` + ``moov``; ``duration_ms`` (when known, e.g. a recording's
    range) goes into ``mehd`` so readers know the length without a scan."""
    if not tracks:
        raise ValueError("an MP4 needs at least one track")
    next_id = max(t.track_id for t in tracks) + 1
    mvhd = full_box(b"mvhd", 0, 0, struct.pack(">IIIIIH10x", 0, 0, MOVIE_TIMESCALE, 0, 0x10000, 0x0100),
                    _MATRIX, bytes(24), _U32.pack(next_id))
    mvex_children = []
    if duration_ms is not None:
        mvex_children.append(full_box(b"mehd", 1, 0, struct.pack(">Q", duration_ms)))
    mvex_children += [full_box(b"trex", 0, 0, struct.pack(">IIIII", t.track_id, 1, 0, 0, 0))
                      for t in tracks]
    moov = box(b"moov", mvhd, *(_trak(t) for t in tracks), box(b"mvex", *mvex_children))
    return ftyp() + moov
