"""AAC AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).

The ASC arrives in an SDP ``config=`` hex string, an FLV sequence header or
an MP4 ``esds``; it gives the sample rate (the RTP clock), channel count and
object type the FLV, ADTS and SDP writers need.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import ProtocolError
from hub.media.bits import BitReader

__all__ = ["SAMPLE_RATES", "AOT_AAC_LC", "AOT_SBR", "AOT_PS", "AacConfig", "sample_rate_index"]

#: samplingFrequencyIndex -> Hz (indices 13, 14 reserved; 15 means explicit).
SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050,
                16000, 12000, 11025, 8000, 7350)
_RATE_INDEX = {rate: i for i, rate in enumerate(SAMPLE_RATES)}

AOT_AAC_MAIN = 1
AOT_AAC_LC = 2
AOT_SBR = 5
AOT_PS = 29
_AOT_ESCAPE = 31


def sample_rate_index(rate: int) -> int | None:
    """Table index of ``rate``, or None when it must be coded explicitly."""
    return _RATE_INDEX.get(rate)


@dataclass(frozen=True, slots=True)
class AacConfig:
    """The leading AudioSpecificConfig fields: object type, rate, channels.

    ``frame_length`` is 960 when the GASpecificConfig frameLengthFlag is set,
    else 1024 (samples per access unit: the RTP timestamp step). Anything
    after the GASpecificConfig's first bits (SBR/PS extensions) is kept in
    ``extra_bits`` so ``bytes()`` gives the original config back.
    """

    object_type: int
    sample_rate: int
    channels: int
    frame_length: int = 1024
    depends_on_core_coder: bool = False
    extension_flag: bool = False
    extra: tuple[int, int] = (0, 0)  # (bit count, value) after the fields above

    @property
    def sample_rate_index(self) -> int | None:
        """Table index of the sample rate, None for an explicit rate."""
        return _RATE_INDEX.get(self.sample_rate)

    @classmethod
    def parse(cls, asc: bytes | bytearray | memoryview) -> AacConfig:
        """Parse an AudioSpecificConfig; ProtocolError when malformed."""
        if len(asc) < 2:
            raise ProtocolError("AAC: AudioSpecificConfig shorter than 2 bytes")
        r = BitReader(asc)
        aot = r.read_bits(5)
        if aot == _AOT_ESCAPE:
            aot = 32 + r.read_bits(6)
        if aot == 0:
            raise ProtocolError("AAC: audio object type 0")
        index = r.read_bits(4)
        if index == 15:
            rate = r.read_bits(24)
        elif index < len(SAMPLE_RATES):
            rate = SAMPLE_RATES[index]
        else:
            raise ProtocolError(f"AAC: reserved sampling frequency index {index}")
        if rate == 0:
            raise ProtocolError("AAC: sample rate 0")
        channels = r.read_bits(4)
        frame_length = 1024
        core = ext = False
        if aot in (1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23) and r.bits_left >= 3:
            frame_length = 960 if r.read_flag() else 1024
            core = r.read_flag()
            if core:
                if r.bits_left < 15:
                    raise ProtocolError("AAC: truncated coreCoderDelay")
                raise ProtocolError("AAC: dependsOnCoreCoder is not supported")
            ext = r.read_flag()
        n = r.bits_left
        extra = (n, r.read_bits(n))
        return cls(aot, rate, channels, frame_length, core, ext, extra)

    def __bytes__(self) -> bytes:
        """Serialise (explicit 24-bit frequency when the rate is not in the table)."""
        fields: list[tuple[int, int]] = []
        if self.object_type >= 32:
            fields += [(5, _AOT_ESCAPE), (6, self.object_type - 32)]
        else:
            fields.append((5, self.object_type))
        index = _RATE_INDEX.get(self.sample_rate)
        if index is None:
            fields += [(4, 15), (24, self.sample_rate)]
        else:
            fields.append((4, index))
        fields.append((4, self.channels))
        if self.object_type in (1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23):
            fields += [(1, self.frame_length == 960), (1, self.depends_on_core_coder),
                       (1, self.extension_flag)]
        fields.append(self.extra)
        value = 0
        nbits = 0
        for width, v in fields:
            value = (value << width) | (int(v) & ((1 << width) - 1))
            nbits += width
        pad = -nbits % 8
        return (value << pad).to_bytes((nbits + pad) // 8, "big")
