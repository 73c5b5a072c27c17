"""AAC over RTP, RFC 3640 ``mpeg4-generic`` mode AAC-hbr (and -lbr by parameters).

Each packet holds an AU-headers section (16-bit length in bits, then one
header per access unit: size and index / index-delta) followed by the access
units back to back; one AU may also be split over several packets (each with
the whole AU's size in its header; the marker is on the last). Out come raw
AAC frames, no ADTS header.

`feed` is the ingest's path: the packet's fields and a view of its payload
in, each frame out to a sink as a view of that payload (the ring takes the
one copy); `push` is the same for an RtpPacket, giving AccessUnits.
"""

from __future__ import annotations

import struct

from hub.media.access_unit import AccessUnit, DepacketizerStats
from hub.media.rtp import RtpPacket
from hub.media.rtp_nal import UnitSink
from hub.media.seqnum import TimestampUnwrapper

__all__ = ["MAX_AAC_AU_SIZE", "AacDepacketizer", "AacPacketizer"]

#: Largest AAC access unit accepted (6144 bits per channel; 8 KiB is ample).
MAX_AAC_AU_SIZE = 8192

_RTP = struct.Struct(">BBHIIH")  # RTP header + AU-headers-length


class AacDepacketizer:
    """RFC 3640 depacketiser; the SDP fmtp gives the three field widths.

    ``frame_length`` is samples per AU (1024, or 960): AU *i* of a packet
    with timestamp *ts* gets ``ts + i * frame_length`` (following the index
    deltas). Interleaving (a non-zero first AU-Index) is not supported: such
    packets are counted in ``stats.unsupported`` and dropped.
    """

    def __init__(self, *, size_length: int = 13, index_length: int = 3,
                 index_delta_length: int = 3, frame_length: int = 1024,
                 max_au_size: int = MAX_AAC_AU_SIZE) -> None:
        if not 1 <= size_length <= 16:
            raise ValueError("sizelength must be 1..16")
        self.size_length = size_length
        self.index_length = index_length
        self.index_delta_length = index_delta_length
        self.frame_length = frame_length
        self.max_au_size = max_au_size
        self.stats = DepacketizerStats()
        self._ts = TimestampUnwrapper()
        self._last_seq: int | None = None
        self._last_ts: int | None = None
        #: A fragmented AU so far, copied: its fragments may be many and
        #: small (empty even), each a view of a whole read if kept as is.
        self._frag: bytearray | None = None
        self._frag_size = 0
        self._frag_ts = 0

    def push(self, pkt: RtpPacket) -> list[AccessUnit]:
        """Feed one packet; return the AAC frames it completed."""
        out: list[AccessUnit] = []

        def collect(pts: int, data: bytes | memoryview, keyframe: bool) -> None:
            out.append(AccessUnit(pts, bytes(data), keyframe))

        self.feed(pkt.sequence_number, pkt.timestamp, pkt.marker, memoryview(pkt.payload), collect)
        return out

    def feed(self, seq: int, ts: int, marker: bool, payload: memoryview, unit: UnitSink) -> None:
        """One packet as its fields; each frame it completes goes to `unit`
        (a view of `payload`, or the fragments' copy joined)."""
        stats = self.stats
        stats.packets += 1
        gap = False
        last = self._last_seq
        if last is not None:
            d = (seq - last) & 0xFFFF
            if d != 1:
                if d == 0 or d >= 0x8000:  # late or a duplicate
                    stats.late += 1
                    return
                stats.lost += d - 1
                gap = True
        self._last_seq = seq
        continues_lost = gap and ts == self._last_ts
        self._last_ts = ts
        if self._frag is not None and (gap or ts != self._frag_ts):
            self._drop_frag()
        headers = self._parse_headers(payload)
        if headers is None:
            return
        entries, data = headers
        if len(entries) == 1 and (self._frag is not None or entries[0][0] > len(data)):
            if continues_lost and self._frag is None:
                stats.dropped_units += 1  # middle or end of an AU whose start was lost
                return
            self._fragment(entries[0][0], data, ts, marker, unit)
            return
        base = self._ts.extend(ts)
        pos = 0
        frame_length = self.frame_length
        for size, index in entries:
            if size > len(data) - pos:
                stats.malformed += 1
                break
            if size > self.max_au_size:
                stats.oversize += 1
            elif size:
                stats.units += 1
                unit(base + index * frame_length, data[pos:pos + size], True)
            pos += size

    def _parse_headers(self, payload: memoryview) -> tuple[list[tuple[int, int]], memoryview] | None:
        """AU headers as (size, cumulative index) and the data section, or None."""
        stats = self.stats
        if len(payload) < 2:
            stats.malformed += 1
            return None
        bits = (payload[0] << 8) | payload[1]
        nbytes = (bits + 7) >> 3
        if 2 + nbytes > len(payload) or bits == 0:
            stats.malformed += 1
            return None
        value = int.from_bytes(payload[2:2 + nbytes], "big")
        left = nbytes * 8
        used = 0
        size_len = self.size_length
        entries: list[tuple[int, int]] = []
        index = 0
        width = self.index_length
        while used + size_len + width <= bits:
            used += size_len + width
            shift = left - used
            field = (value >> shift) & ((1 << (size_len + width)) - 1)
            delta = field & ((1 << width) - 1)
            if entries:
                index += delta + 1
            elif delta:
                stats.unsupported += 1  # interleaved AUs
                return None
            entries.append((field >> width, index))
            width = self.index_delta_length
        if not entries or used != bits:
            stats.malformed += 1
            return None
        return entries, payload[2 + nbytes:]

    def _fragment(self, size: int, data: memoryview, ts: int, marker: bool, unit: UnitSink) -> None:
        stats = self.stats
        if self._frag is None:
            if size > self.max_au_size:
                stats.oversize += 1
                return
            self._frag = bytearray()
            self._frag_size = size
            self._frag_ts = ts
        elif size != self._frag_size:
            stats.malformed += 1
            self._drop_frag()
            return
        frag = self._frag
        if len(frag) + len(data) > size:
            stats.malformed += 1
            self._drop_frag()
            return
        frag += data
        if len(frag) == size:
            self._frag = None
            stats.units += 1
            unit(self._ts.extend(ts), bytes(frag), True)
            return
        if marker:  # the last fragment came short
            stats.malformed += 1
            self._drop_frag()

    def _drop_frag(self) -> None:
        self._frag = None
        self.stats.dropped_units += 1


class AacPacketizer:
    """Raw AAC frames to RFC 3640 packets: one AU per packet, fragmented if too big.

    The AU header is ``size_length`` + ``index_length`` bits (13 + 3 for
    AAC-hbr, so 2 bytes) with index 0.
    """

    __slots__ = ("pt", "ssrc", "mtu", "seq", "size_length", "index_length",
                 "_hdr_bits", "_hdr_bytes", "_max_payload")

    def __init__(self, pt: int, ssrc: int, mtu: int = 1400, *, start_seq: int = 0,
                 size_length: int = 13, index_length: int = 3) -> None:
        self.pt = pt
        self.ssrc = ssrc
        self.mtu = mtu
        #: Sequence number of the next packet.
        self.seq = start_seq & 0xFFFF
        self.size_length = size_length
        self.index_length = index_length
        self._hdr_bits = size_length + index_length
        self._hdr_bytes = (self._hdr_bits + 7) >> 3
        self._max_payload = mtu - 14 - self._hdr_bytes
        if self._max_payload < 1:
            raise ValueError("MTU too small")

    def packetize(self, au: bytes | bytearray | memoryview, ts: int) -> list[bytes]:
        """Packetise one raw AAC frame with RTP timestamp ``ts``."""
        size = len(au)
        if not size:
            return []
        if size >= 1 << self.size_length:
            raise ValueError(f"AAC frame of {size} bytes does not fit sizelength {self.size_length}")
        hb = self._hdr_bytes
        header = (size << (self.index_length + hb * 8 - self._hdr_bits)).to_bytes(hb, "big")
        ts &= 0xFFFFFFFF
        out: list[bytes] = []
        seq = self.seq
        view = memoryview(au)
        pos = 0
        step = self._max_payload
        while pos < size:
            end = min(pos + step, size)
            mark = 0x80 if end == size else 0
            out.append(b"".join((_RTP.pack(0x80, mark | self.pt, seq, ts, self.ssrc, self._hdr_bits),
                                 header, view[pos:end])))
            seq = (seq + 1) & 0xFFFF
            pos = end
        self.seq = seq
        return out
