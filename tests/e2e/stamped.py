"""Pictures that say which frame they are, and a publisher that notes when it sent each.

For live-delay measurements in a browser: every frame of the clip carries
its frame number as a 16-bit bar code across its top 40 rows (bit b is the
40-pixel block b from the left: white 1, black 0), which a page reads back
from the displayed frame through a canvas. The publisher (run as
``python -m tests.e2e.stamped CLIP RTSP_URL TIMES``) pushes the clip over
RTSP/TCP in real time with PyAV and appends each video frame's send time
(wall clock, after the packet left the muxer) to TIMES, one line per frame.
Delay of a picture = when the browser shows it - when it was sent: both
clocks are this machine's.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

WIDTH, HEIGHT, FPS = 640, 360, 25
BAR_ROWS, BIT_WIDTH, BITS = 40, 40, 16

#: Reads the frame number of the frame on show in ``video`` (a page function's body).
READ_BARCODE_JS = """
function readBarcode(video, ctx) {
  ctx.drawImage(video, 0, 0, 640, 40, 0, 0, 640, 40);
  const d = ctx.getImageData(0, 0, 640, 40).data;
  let n = 0;
  for (let b = 0; b < 16; b++) {
    const i = (20 * 640 + b * 40 + 20) * 4;
    if (d[i] > 128) n |= 1 << b;
  }
  return n;
}
"""


def make_stamped_media(folder: Path, seconds: int = 60) -> Path:
    """testsrc2 with the bar code on top, 640x360 25 fps, GOP 1 s, no B-frames, and AAC."""
    out = folder / f"stamped-{seconds}.mp4"
    if out.exists():
        return out
    bar = (f"color=black:s={WIDTH}x{BAR_ROWS}:r={FPS},format=gray,"
           f"geq=lum='255*mod(floor(N/pow(2\\,floor(X/{BIT_WIDTH})))\\,2)'")
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}",
           "-f", "lavfi", "-i", bar,
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
           "-filter_complex", "[0][1]overlay=0:0,format=yuv420p[v]", "-map", "[v]", "-map", "2",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", str(FPS), "-bf", "0",
           "-threads", "1", "-c:a", "aac", "-b:a", "64k", "-ac", "1", str(out)]
    subprocess.run(cmd, check=True, timeout=300)
    return out


def push(clip: str, url: str, times: str) -> None:
    import av

    inp = av.open(clip)
    out = av.open(url, mode="w", format="rtsp", options={"rtsp_transport": "tcp"})
    vin, ain = inp.streams.video[0], inp.streams.audio[0]
    vout, aout = out.add_stream_from_template(vin), out.add_stream_from_template(ain)
    origin: float | None = None
    with open(times, "w") as log:
        for pkt in inp.demux(vin, ain):
            if pkt.dts is None:
                continue
            at = float(pkt.dts * pkt.time_base)
            if origin is None:
                origin = time.monotonic() - at
            wait = origin + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            video = pkt.stream is vin
            pkt.stream = vout if video else aout
            out.mux(pkt)
            if video:
                log.write(f"{time.time():.6f}\n")
                log.flush()
    out.close()


def read_times(path: Path) -> list[float]:
    return [float(x) for x in path.read_text().split()]


if __name__ == "__main__":
    push(sys.argv[1], sys.argv[2], sys.argv[3])
