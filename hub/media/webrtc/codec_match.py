"""Which offered payload type carries a stream's codec (no transcoding).

H.264 (RFC 6184) needs packetization-mode=1 (our packetiser makes FU-A) and
a profile the browser declared it decodes: the offered profile-level-id is
compared with the stream's SPS by profile class, as WebRTC does it
(constrained baseline, baseline, main, constrained high, high); the level is
ignored (``level-asymmetry-allowed``). When no offered profile covers the
stream's, the most capable offered one is used: Chromium 156 offers no High
profile at all, and decodes a High stream (without B-frames) sent as Main
(tests/media/webrtc/test_webrtc_chromium.py). H.265 (RFC 7798) is matched on
profile-id.
"""

from __future__ import annotations

from hub.media.stream_desc import TrackDesc

from .offer import OfferCodec

__all__ = ["h264_profile_class", "choose_video", "choose_audio", "WEBRTC_AUDIO", "WEBRTC_VIDEO"]

WEBRTC_VIDEO = ("H264", "H265")
#: Audio codecs a browser takes as is. AAC (MPEG4-GENERIC) is not among them.
WEBRTC_AUDIO = {"OPUS": 48000, "PCMA": 8000, "PCMU": 8000}

# Profile classes ordered by what a decoder of that class also decodes.
_CB, _BASELINE, _MAIN, _CHIGH, _HIGH = 0, 1, 2, 3, 4
_RANK = {_CB: 0, _BASELINE: 0, _MAIN: 1, _CHIGH: 2, _HIGH: 3}


def h264_profile_class(profile_idc: int, iop: int) -> int | None:
    """The WebRTC profile class of profile_idc + constraint flags (None: other)."""
    cs0, cs1, cs3 = iop & 0x80, iop & 0x40, iop & 0x10
    if profile_idc == 0x42:
        return _CB if cs1 else _BASELINE
    if profile_idc == 0x4D:
        return _CB if cs0 else _MAIN
    if profile_idc == 0x58:
        return _CB if cs0 and cs1 else _BASELINE
    if profile_idc == 0x64:
        return _CHIGH if (iop & 0x0C) == 0x0C else _HIGH
    if profile_idc in (0x6E, 0x7A, 0xF4) and cs3:
        return _HIGH  # intra-only variants, decoded like High
    return None


def _offered_class(codec: OfferCodec) -> int | None:
    plid = codec.params.get("profile-level-id", "42000a")
    if len(plid) != 6:
        return None
    try:
        value = int(plid, 16)
    except ValueError:
        return None
    return h264_profile_class(value >> 16, (value >> 8) & 0xFF)


def _stream_h264_class(track: TrackDesc) -> int | None:
    if len(track.sps) >= 4:
        return h264_profile_class(track.sps[1], track.sps[2])
    plid = dict(p.split("=", 1) for p in track.fmtp.replace(" ", "").split(";") if "=" in p) \
        .get("profile-level-id", "")
    if len(plid) == 6:
        try:
            value = int(plid, 16)
        except ValueError:
            return None
        return h264_profile_class(value >> 16, (value >> 8) & 0xFF)
    return None


def _choose_h264(codecs: list[OfferCodec], track: TrackDesc) -> OfferCodec | None:
    usable: list[tuple[OfferCodec, int]] = []
    for c in codecs:
        if c.name != "H264" or c.clock_rate != 90000 or c.params.get("packetization-mode") != "1":
            continue
        cls = _offered_class(c)
        if cls is not None:
            usable.append((c, cls))
    if not usable:
        return None
    want = _stream_h264_class(track)
    if want is None:
        return usable[0][0]
    exact = [c for c, cls in usable if cls == want]
    if exact:
        return exact[0]
    covering = sorted((_RANK[cls], i) for i, (_c, cls) in enumerate(usable) if _RANK[cls] >= _RANK[want])
    if covering:
        return usable[covering[0][1]][0]
    return usable[max(range(len(usable)), key=lambda i: (_RANK[usable[i][1]], -i))][0]


def _choose_h265(codecs: list[OfferCodec], track: TrackDesc) -> OfferCodec | None:
    usable = [c for c in codecs if c.name == "H265" and c.clock_rate == 90000]
    if not usable:
        return None
    profile = "1"
    if len(track.sps) >= 4:
        profile = str(track.sps[3] & 0x1F)  # general_profile_idc (2-byte header, then 1 byte)
    same = [c for c in usable if c.params.get("profile-id", "1") == profile]
    return (same or usable)[0]


def choose_video(codecs: list[OfferCodec], track: TrackDesc) -> OfferCodec | None:
    """The offered payload type to send ``track`` with, None if none fits."""
    if track.codec == "H264":
        return _choose_h264(codecs, track)
    if track.codec == "H265":
        return _choose_h265(codecs, track)
    return None


def choose_audio(codecs: list[OfferCodec], track: TrackDesc) -> OfferCodec | None:
    """Opus, PCMA or PCMU as the source has it; None for AAC and the rest."""
    rate = WEBRTC_AUDIO.get(track.codec.upper())
    if rate is None:
        return None
    for c in codecs:
        if c.name == track.codec.upper() and c.clock_rate == rate:
            return c
    return None
