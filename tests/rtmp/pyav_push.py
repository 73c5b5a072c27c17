"""PyAV's bundled FFmpeg publishing H.265 as Enhanced RTMP, in real time.

    python pyav_push.py URL SECONDS

Run in its own process: PyAV holds the GIL through its blocking network I/O.
"""

from __future__ import annotations

import sys
import time

import av


def main(url: str, seconds: int) -> None:
    src = av.open(f"testsrc2=size=320x240:rate=25:duration={seconds}", format="lavfi")
    out = av.open(url, "w", format="flv", options={"rw_timeout": "10000000"})
    stream = out.add_stream("libx265", rate=25, options={
        "preset": "ultrafast", "x265-params": "keyint=25:bframes=0:log-level=error"})
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    start = time.monotonic()
    for n, frame in enumerate(src.decode(video=0)):
        wait = start + n / 25 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        for packet in stream.encode(frame.reformat(format="yuv420p")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    src.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
