"""Recapture the RTMP publish transcripts in tests/data (run by hand, not a test).

    .venv/bin/python tests/media/rtmp/make_rtmp_fixtures.py

Each file is every byte a real publisher sent to the test glue: C0+C1, C2
(FFmpeg's publisher echoes our S1 there) and its chunk stream to the end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "data"
sys.path.insert(0, str(HERE))

from rtmp_glue import RtmpGlue  # noqa: E402


def capture(name: str, cmd_for: object) -> None:
    with RtmpGlue() as glue:
        url = f"rtmp://127.0.0.1:{glue.port}/live/cam1"
        assert callable(cmd_for)
        subprocess.run(cmd_for(url), check=True, timeout=60, capture_output=True)
        deadline = time.monotonic() + 5
        while not glue.connections[0].closed and time.monotonic() < deadline:
            time.sleep(0.05)
        data = bytes(glue.connections[0].received)
    (DATA / name).write_bytes(data)
    print(name, len(data))


if __name__ == "__main__":
    capture("rtmp_ffmpeg_publish.bin", lambda url: [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
        "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine",
        "-c:v", "libx264", "-g", "25", "-c:a", "aac", "-t", "1", "-f", "flv", url])
    capture("rtmp_ffmpeg8_hevc_publish.bin", lambda url: [
        sys.executable, str(HERE / "pyav_peer.py"), "publish", url, "libx265", "1"])
