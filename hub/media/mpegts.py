"""MPEG-TS muxer for HLS segments (ISO/IEC 13818-1).

One program: PAT, PMT on PID 0x1000, video on 0x100 (H.264 stream type 0x1B
or H.265 0x24), AAC with ADTS on 0x101 (0x0F) — the PIDs and tables FFmpeg
writes, so tools and players see nothing unusual. The PCR rides in the
adaptation field of the first packet of each video PES (of each audio PES
when there is no video), taken from the DTS; keyframes carry the
random_access_indicator. Continuity counters are per PID and survive across
segments, as the standard wants for one continuous stream.

Video access units arrive as AVCC (4-byte lengths); TS needs Annex B, an
access unit delimiter first and, on keyframes, the parameter sets — added
here when the access unit lacks them so every segment starts decodable.
"""

from __future__ import annotations

from typing import Literal, Sequence

from hub.errors import ProtocolError
from hub.media.codec_config import AdtsParams, adts_header

TS_PACKET = 188
TS_PAYLOAD = 184
SYNC = 0x47

PID_PAT = 0x0000
PID_PMT = 0x1000
PID_VIDEO = 0x0100
PID_AUDIO = 0x0101

STREAM_TYPE_H264 = 0x1B
STREAM_TYPE_H265 = 0x24
STREAM_TYPE_AAC = 0x0F

STREAM_ID_VIDEO = 0xE0
STREAM_ID_AUDIO = 0xC0

#: registration_descriptor "HEVC": FFmpeg writes it and older demuxers need it.
HEVC_REGISTRATION = b"\x05\x04HEVC"

PROGRAM_NUMBER = 1
TRANSPORT_STREAM_ID = 1

_START = b"\x00\x00\x00\x01"
_AUD_H264 = b"\x00\x00\x00\x01\x09\xF0"  # primary_pic_type 7 (any slice type)
_AUD_H265 = b"\x00\x00\x00\x01\x46\x01\x50"  # pic_type 2 (any)
_PARAM_TYPES_H264 = frozenset((7, 8))
_PARAM_TYPES_H265 = frozenset((32, 33, 34))

VideoCodec = Literal["h264", "h265"]

#: Headers of middle packets (no PUSI, payload only), per PID and counter.
_PLAIN_HEADERS = {pid: tuple(bytes((SYNC, pid >> 8, pid & 0xFF, 0x10 | cc)) for cc in range(16))
                  for pid in (PID_VIDEO, PID_AUDIO)}


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
        table.append(c & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32_mpeg2(data: bytes | bytearray | memoryview) -> int:
    """CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final XOR)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in bytes(data):
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ b]
    return crc


def _section(table_id: int, table_id_ext: int, body: bytes) -> bytes:
    """A long-form PSI section: header, body, CRC (version 0, current, one section)."""
    length = 5 + len(body) + 4
    head = bytes((table_id, 0xB0 | (length >> 8), length & 0xFF,
                  table_id_ext >> 8, table_id_ext & 0xFF, 0xC1, 0x00, 0x00))
    sec = head + body
    return sec + crc32_mpeg2(sec).to_bytes(4, "big")


def pat_section(pmt_pid: int = PID_PMT) -> bytes:
    body = bytes((PROGRAM_NUMBER >> 8, PROGRAM_NUMBER & 0xFF,
                  0xE0 | (pmt_pid >> 8), pmt_pid & 0xFF))
    return _section(0x00, TRANSPORT_STREAM_ID, body)


def pmt_section(pcr_pid: int, streams: Sequence[tuple[int, int, bytes]]) -> bytes:
    """``streams`` is (stream_type, pid, ES descriptors) triples."""
    parts = [bytes((0xE0 | (pcr_pid >> 8), pcr_pid & 0xFF, 0xF0, 0x00))]
    for stream_type, pid, descriptors in streams:
        parts.append(bytes((stream_type, 0xE0 | (pid >> 8), pid & 0xFF,
                            0xF0 | (len(descriptors) >> 8), len(descriptors) & 0xFF)))
        parts.append(descriptors)
    return _section(0x02, PROGRAM_NUMBER, b"".join(parts))


def encode_timestamp(prefix: int, ts: int) -> bytes:
    """The 5-byte PTS/DTS field with its 4-bit prefix and marker bits."""
    ts &= (1 << 33) - 1
    return bytes((
        (prefix << 4) | ((ts >> 29) & 0x0E) | 1,
        (ts >> 22) & 0xFF,
        ((ts >> 14) & 0xFE) | 1,
        (ts >> 7) & 0xFF,
        ((ts << 1) & 0xFE) | 1,
    ))


def encode_pcr(base: int, ext: int = 0) -> bytes:
    """6-byte PCR: 33-bit base (90 kHz), 6 reserved bits, 9-bit extension."""
    base &= (1 << 33) - 1
    return bytes((
        (base >> 25) & 0xFF, (base >> 17) & 0xFF, (base >> 9) & 0xFF, (base >> 1) & 0xFF,
        ((base & 1) << 7) | 0x7E | ((ext >> 8) & 1), ext & 0xFF,
    ))


def pes_header(stream_id: int, pts: int, dts: int | None, payload_len: int | None) -> bytes:
    """PES header; DTS is written only when it differs from PTS. ``payload_len``
    None (or too big) writes PES_packet_length 0, allowed for video."""
    if dts is None or dts == pts:
        flags, fields = 0x80, encode_timestamp(0x2, pts)
    else:
        flags, fields = 0xC0, encode_timestamp(0x3, pts) + encode_timestamp(0x1, dts)
    length = 0
    if payload_len is not None:
        length = 3 + len(fields) + payload_len
        if length > 0xFFFF:
            length = 0
    return bytes((0, 0, 1, stream_id, length >> 8, length & 0xFF, 0x80, flags,
                  len(fields))) + fields


class TsMuxer:
    """Turns a stream's access units into 188-byte TS packets.

    Created once per HLS segmenter; ``psi()`` starts each segment, then
    ``video()`` / ``audio()`` per access unit. Timestamps are 90 kHz ints.
    """

    __slots__ = ("video_codec", "has_audio", "_cc", "_pat", "_pmt", "_pcr_pid", "_aud",
                 "_param_types")

    def __init__(self, video_codec: VideoCodec | None, audio: bool) -> None:
        if video_codec not in (None, "h264", "h265"):
            raise ValueError(f"unsupported video codec {video_codec!r}")
        if video_codec is None and not audio:
            raise ValueError("a TS needs at least one elementary stream")
        self.video_codec = video_codec
        self.has_audio = audio
        self._cc = {PID_PAT: 0, PID_PMT: 0, PID_VIDEO: 0, PID_AUDIO: 0}
        streams: list[tuple[int, int, bytes]] = []
        if video_codec == "h264":
            streams.append((STREAM_TYPE_H264, PID_VIDEO, b""))
        elif video_codec == "h265":
            streams.append((STREAM_TYPE_H265, PID_VIDEO, HEVC_REGISTRATION))
        if audio:
            streams.append((STREAM_TYPE_AAC, PID_AUDIO, b""))
        self._pcr_pid = PID_VIDEO if video_codec is not None else PID_AUDIO
        self._pat = pat_section()
        self._pmt = pmt_section(self._pcr_pid, streams)
        self._aud = _AUD_H265 if video_codec == "h265" else _AUD_H264
        self._param_types = _PARAM_TYPES_H265 if video_codec == "h265" else _PARAM_TYPES_H264

    def _next_cc(self, pid: int) -> int:
        cc = self._cc[pid]
        self._cc[pid] = (cc + 1) & 0x0F
        return cc

    def _psi_packet(self, pid: int, section: bytes) -> bytes:
        head = bytes((SYNC, 0x40 | (pid >> 8), pid & 0xFF, 0x10 | self._next_cc(pid), 0))
        return head + section + b"\xFF" * (TS_PACKET - len(head) - len(section))

    def psi(self) -> bytes:
        """PAT and PMT, one packet each — written at the start of every segment."""
        return self._psi_packet(PID_PAT, self._pat) + self._psi_packet(PID_PMT, self._pmt)

    def _packetize(self, pid: int, pes: bytes, pcr: int | None, random_access: bool) -> bytes:
        """Split a PES into packets: the first carries PUSI and the optional
        PCR/RAI adaptation field, the last is padded by adaptation-field
        stuffing; full packets in between take a precomputed header."""
        view = memoryview(pes)
        total = len(pes)
        out = bytearray()
        cc = self._cc[pid]
        af: bytearray | None = None
        if pcr is not None or random_access:
            af = bytearray(((0x40 if random_access else 0) | (0x10 if pcr is not None else 0),))
            if pcr is not None:
                af += encode_pcr(pcr)
        pos = self._packet(out, pid, 0x40, cc, af, view, 0)
        cc = (cc + 1) & 0x0F
        plain = _PLAIN_HEADERS[pid]
        while total - pos >= TS_PAYLOAD:
            out += plain[cc]
            out += view[pos:pos + TS_PAYLOAD]
            pos += TS_PAYLOAD
            cc = (cc + 1) & 0x0F
        if pos < total:
            self._packet(out, pid, 0, cc, None, view, pos)
            cc = (cc + 1) & 0x0F
        self._cc[pid] = cc
        return bytes(out)

    @staticmethod
    def _packet(out: bytearray, pid: int, pusi: int, cc: int, af: bytearray | None,
                view: memoryview, pos: int) -> int:
        """Append one packet taking as much of ``view[pos:]`` as fits, stuffing
        the adaptation field when less than a full payload is left."""
        space = TS_PAYLOAD - (1 + len(af) if af is not None else 0)
        remaining = len(view) - pos
        if remaining < space:
            stuff = space - remaining
            if af is not None:
                af += b"\xFF" * stuff
            elif stuff == 1:
                af = bytearray()
            else:
                af = bytearray(b"\x00" + b"\xFF" * (stuff - 2))
            space = remaining
        control = 0x30 if af is not None else 0x10
        out += bytes((SYNC, pusi | (pid >> 8), pid & 0xFF, control | cc))
        if af is not None:
            out.append(len(af))
            out += af
        out += view[pos:pos + space]
        return pos + space

    def annexb(self, au_avcc: bytes | memoryview, keyframe: bool,
               params: Sequence[bytes]) -> bytes:
        """AVCC access unit -> Annex B with an AUD first and, on keyframes, the
        parameter sets when the access unit does not carry them."""
        h265 = self.video_codec == "h265"
        view = memoryview(au_avcc)
        nals: list[memoryview] = []
        has_params = False
        pos, total = 0, len(view)
        while pos < total:
            if pos + 4 > total:
                raise ProtocolError("AVCC: truncated NAL length")
            size = int.from_bytes(view[pos:pos + 4], "big")
            pos += 4
            if size == 0 or pos + size > total:
                raise ProtocolError("AVCC: NAL length out of range")
            nal = view[pos:pos + size]
            pos += size
            nal_type = (nal[0] >> 1) & 0x3F if h265 else nal[0] & 0x1F
            if nal_type == (35 if h265 else 9):
                continue  # our own AUD goes first
            if nal_type in self._param_types:
                has_params = True
            nals.append(nal)
        parts: list[bytes | memoryview] = [self._aud]
        if keyframe and not has_params:
            for p in params:
                parts += (_START, p)
        for nal in nals:
            parts += (_START, nal)
        return b"".join(parts)

    def video(self, au_avcc: bytes | memoryview, pts90k: int, dts90k: int, keyframe: bool,
              params: Sequence[bytes] = ()) -> bytes:
        """One video access unit as a PES in TS packets (PCR from the DTS)."""
        if self.video_codec is None:
            raise ValueError("muxer has no video stream")
        es = self.annexb(au_avcc, keyframe, params)
        pes = pes_header(STREAM_ID_VIDEO, pts90k, dts90k, None) + es
        return self._packetize(PID_VIDEO, pes, dts90k, keyframe)

    def audio_frames(self, frames: Sequence[bytes | memoryview], pts90k: int,
                     adts: AdtsParams) -> bytes:
        """Several raw AAC frames in one PES (less overhead: one PES header and
        fewer stuffed packets); ``pts90k`` is the first frame's."""
        if not self.has_audio:
            raise ValueError("muxer has no audio stream")
        parts: list[bytes | memoryview] = []
        for f in frames:
            parts += (adts_header(adts.object_type, adts.sample_rate_index, adts.channels,
                                  len(f)), f)
        es = b"".join(parts)
        pes = pes_header(STREAM_ID_AUDIO, pts90k, None, len(es)) + es
        audio_only = self.video_codec is None
        return self._packetize(PID_AUDIO, pes, pts90k if audio_only else None, audio_only)

    def audio(self, raw_aac: bytes | memoryview, pts90k: int, adts: AdtsParams) -> bytes:
        """One raw AAC frame, ADTS-wrapped, as a PES in TS packets."""
        return self.audio_frames((raw_aac,), pts90k, adts)
