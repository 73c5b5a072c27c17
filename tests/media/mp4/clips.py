"""Test input: clips made with the ffmpeg CLI, demuxed with PyAV into ring entries.

An MPEG-TS is what a camera-like encoder gives (Annex B video, ADTS audio,
90 kHz timestamps); it is turned into what the ring carries with our own
helpers: AVCC access units without AUDs (parameter sets stay in band, as the
RTP depacketiser leaves them), raw AAC frames, timestamps per track clock
counted from the stream's start, and `TrackDesc`s with the parameter sets.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av

from hub.media.access_unit import annexb_split, avcc_join
from hub.media.stream_desc import AUDIO_AAC, TrackDesc

FPS = 25
AUDIO_RATE = 48000


@dataclass(frozen=True)
class Entry:
    track: int
    pts: int
    dts: int
    keyframe: bool
    data: bytes


@dataclass(frozen=True)
class Clip:
    tracks: list[TrackDesc]
    entries: list[Entry]  # in arrival (demux) order
    seconds: float


def make_ts(path: Path, codec: str, seconds: float, *, bframes: int = 0, audio: bool = True,
            video: bool = True) -> None:
    """testsrc2 320x240 at 25 fps (GOP 1 s) and a 440 Hz sine, as MPEG-TS."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        cmd += ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={AUDIO_RATE}"]
    cmd += ["-t", str(seconds)]
    if video:
        if codec == "h264":
            cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-keyint_min", str(FPS),
                    "-sc_threshold", "0", "-bf", str(bframes), "-pix_fmt", "yuv420p"]
        else:
            cmd += ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-x265-params", f"keyint={FPS}:min-keyint={FPS}:scenecut=0:bframes={bframes}"
                                    ":log-level=error"]
    if audio:
        cmd += ["-c:a", "aac", "-b:a", "64k"]
    cmd += ["-f", "mpegts", str(path)]
    subprocess.run(cmd, check=True, timeout=120)


def _adts_to_raw(pkt: bytes) -> tuple[bytes, bytes]:
    """(raw frame, AudioSpecificConfig) from one ADTS frame."""
    assert pkt[0] == 0xFF and pkt[1] & 0xF0 == 0xF0, "not ADTS"
    header = 7 if pkt[1] & 1 else 9
    object_type = (pkt[2] >> 6) + 1
    sfi = (pkt[2] >> 2) & 0x0F
    channels = ((pkt[2] & 1) << 2) | (pkt[3] >> 6)
    asc = bytes(((object_type << 3) | (sfi >> 1), ((sfi & 1) << 7) | (channels << 3)))
    return pkt[header:], asc


def read_ts(path: Path, codec: str) -> Clip:
    """Ring entries (and track descriptions) from an MPEG-TS file."""
    h265 = codec == "h265"
    aud, params = (35, {32: "vps", 33: "sps", 34: "pps"}) if h265 else (9, {7: "sps", 8: "pps"})
    raw: list[tuple[str, int, int, bool, bytes]] = []
    video_desc: TrackDesc | None = None
    audio_desc: TrackDesc | None = None
    found: dict[str, bytes] = {}
    asc = b""
    with av.open(str(path)) as c:
        for pkt in c.demux():
            if pkt.size == 0 or pkt.pts is None:
                continue
            kind: str = pkt.stream.type
            data = bytes(pkt)
            if kind == "video":
                nals = []
                for nal in annexb_split(data):
                    t = (nal[0] >> 1) & 0x3F if h265 else nal[0] & 0x1F
                    if t == aud:
                        continue
                    if t in params:
                        found.setdefault(params[t], bytes(nal))
                    nals.append(nal)
                dts = pkt.dts if pkt.dts is not None else pkt.pts
                raw.append(("video", pkt.pts, dts, bool(pkt.is_keyframe), avcc_join(nals)))
            elif kind == "audio":
                frame, asc = _adts_to_raw(data)
                raw.append(("audio", pkt.pts, pkt.pts, True, frame))
    kinds = {k for k, *_ in raw}
    tracks: list[TrackDesc] = []
    index = {}
    if "video" in kinds:
        video_desc = TrackDesc(len(tracks), "video", "H265" if h265 else "H264", 96, 90000,
                               sps=found["sps"], pps=found["pps"], vps=found.get("vps", b""))
        index["video"] = video_desc.index
        tracks.append(video_desc)
    if "audio" in kinds:
        audio_desc = TrackDesc(len(tracks), "audio", AUDIO_AAC, 97, AUDIO_RATE, channels=1,
                               asc=asc, sample_rate=AUDIO_RATE)
        index["audio"] = audio_desc.index
        tracks.append(audio_desc)
    origin = min(min(p, d) for _, p, d, _, _ in raw)
    entries = []
    for kind, pts, dts, key, data in raw:
        if kind == "video":
            entries.append(Entry(index[kind], pts - origin, dts - origin, key, data))
        else:
            ts = (pts - origin) * AUDIO_RATE // 90000
            entries.append(Entry(index[kind], ts, ts, True, data))
    # A live ingest hands entries over in time order; the file interleaves
    # audio in bursts, so order them by decode time as arrival would.
    clocks = {t.index: t.clock_rate for t in tracks}
    entries.sort(key=lambda e: e.dts / clocks[e.track])
    last = max(e.dts for e in entries if e.track == 0)
    return Clip(tracks, entries, last / tracks[0].clock_rate)
