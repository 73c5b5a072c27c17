"""Real peers for end-to-end tests: ffmpeg pushing, PyAV/ffprobe playing.

Media is made once per test session from ffmpeg's test sources, so the tests
need nothing but the ffmpeg CLI and PyAV.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

FFMPEG = "ffmpeg"

# name -> ffmpeg encoding arguments (video + AAC audio), 640x360 25 fps.
VARIANTS: dict[str, list[str]] = {
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "0", "-threads", "1"],
    # What the reference's brief pushes: zerolatency on several threads gives
    # several slices per frame.
    "h264_slices": ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "25",
                    "-threads", "4", "-x264-params", "sliced-threads=1:slices=4"],
    # What `ffmpeg -c copy` of most files pushes: B-frames (PTS out of order).
    "h264_bframes": ["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-threads", "1"],
    "h265": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:bframes=0:log-level=error"],
}


# G.711 A-law audio (8 kHz mono) with H.264: passes through RTSP, own sound format in FLV.
AUDIO = {"h264_pcma": ["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"]}


def make_media(folder: Path, variant: str, seconds: int = 6) -> Path:
    """A file of testsrc video + sine audio (AAC unless AUDIO says), cached per folder."""
    out = folder / (f"{variant}.mkv" if variant in AUDIO else f"{variant}.mp4")
    if out.exists():
        return out
    video = VARIANTS["h264" if variant in AUDIO else variant]
    audio = AUDIO.get(variant, ["-c:a", "aac", "-b:a", "64k", "-ac", "1"])
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc=size=640x360:rate=25:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
           *video, "-pix_fmt", "yuv420p", *audio, "-shortest", str(out)]
    subprocess.run(cmd, check=True, timeout=120)
    return out


@dataclass
class Pusher:
    """ffmpeg pushing a file in a loop, in real time, over RTSP."""

    url: str
    media: Path
    transport: str = "tcp"
    proc: subprocess.Popen[bytes] | None = None
    log: list[bytes] = field(default_factory=list)

    def start(self) -> Pusher:
        cmd = [FFMPEG, "-hide_banner", "-loglevel", "warning", "-re", "-stream_loop", "-1",
               "-i", str(self.media), "-c", "copy", "-f", "rtsp", "-rtsp_transport", self.transport, self.url]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Pusher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class PlayResult:
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int = 0
    height: int = 0
    video_frames: int = 0
    audio_frames: int = 0
    first_video_key: bool | None = None
    video_pts: list[float] = field(default_factory=list)
    decode_errors: int = 0
    log: list[str] = field(default_factory=list)

    def advancing(self) -> bool:
        return len(self.video_pts) > 2 and self.video_pts[-1] > self.video_pts[0]


def play(url: str, frames: int = 50, timeout: float = 15.0, options: dict[str, str] | None = None,
         fmt: str | None = None, wait_key: bool = False) -> PlayResult:
    """Open `url` with PyAV, decode `frames` video frames (or until timeout)."""
    import av
    import av.logging

    res = PlayResult()
    av.logging.set_level(av.logging.ERROR)
    with av.logging.Capture() as logs:
        _play(url, frames, timeout, options, fmt, res, wait_key)
    res.log = [f"{name}: {msg.strip()}" for _lvl, name, msg in logs]
    res.decode_errors += sum(1 for _lvl, name, _m in logs if name in DECODERS)
    return res


DECODERS = {"h264", "hevc", "aac"}


def _play(url: str, frames: int, timeout: float, options: dict[str, str] | None,
          fmt: str | None, res: PlayResult, wait_key: bool = False) -> None:
    """`wait_key`: do not feed the decoder before the first keyframe, as a
    player that joins a running stream (multicast) does."""
    import av

    opts = {"rw_timeout": str(int(timeout * 1e6)), **(options or {})}
    deadline = time.monotonic() + timeout
    with av.open(url, options=opts, format=fmt, timeout=timeout) as c:
        vs = c.streams.video[0] if c.streams.video else None
        aus = c.streams.audio[0] if c.streams.audio else None
        if vs is not None:
            res.video_codec = vs.codec_context.name
        if aus is not None:
            res.audio_codec = aus.codec_context.name
        streams = [s for s in (vs, aus) if s is not None]
        for packet in c.demux(*streams):
            if time.monotonic() > deadline:
                break
            if packet.stream is vs and packet.size:
                if res.first_video_key is None:
                    res.first_video_key = bool(packet.is_keyframe)
                if wait_key and not packet.is_keyframe and not res.video_frames:
                    continue
                try:
                    for f in packet.decode():
                        res.video_frames += 1
                        res.width, res.height = f.width, f.height
                        if f.time is not None:
                            res.video_pts.append(float(f.time))
                except av.error.InvalidDataError:
                    res.decode_errors += 1
            elif packet.stream is aus and packet.size:
                try:
                    res.audio_frames += len(packet.decode())
                except av.error.InvalidDataError:
                    res.decode_errors += 1
            if res.video_frames >= frames:
                break


def iter_lines(data: bytes) -> Iterator[str]:
    yield from data.decode(errors="replace").splitlines()
