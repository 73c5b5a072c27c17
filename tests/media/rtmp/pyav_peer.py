"""PyAV as an RTMP peer, run in its own process by the e2e tests.

PyAV bundles a recent FFmpeg (8.x with PyAV 16+): it publishes H.265 as
Enhanced RTMP (``hvc1``), which the system's FFmpeg 5.1 cannot. It runs in a
child process because PyAV holds the GIL through its blocking network I/O,
which would stall a glue serving from a thread of the same process.

    python pyav_peer.py publish URL CODEC SECONDS   -> prints frames sent
    python pyav_peer.py play URL FRAMES             -> prints JSON: codec, size, pts
"""

from __future__ import annotations

import json
import sys

import av


def publish(url: str, codec: str, seconds: int) -> None:
    src = av.open(f"testsrc2=size=320x240:rate=25:duration={seconds}", format="lavfi")
    options = ({"preset": "ultrafast", "x265-params": "keyint=25:bframes=0:log-level=error"}
               if codec == "libx265" else {"g": "25"})
    out = av.open(url, "w", format="flv", options={"rw_timeout": "10000000"})
    stream = out.add_stream(codec, rate=25, options=options)
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    sent = 0
    for frame in src.decode(video=0):
        for packet in stream.encode(frame.reformat(format="yuv420p")):
            out.mux(packet)
            sent += 1
    for packet in stream.encode():
        out.mux(packet)
        sent += 1
    out.close()
    src.close()
    print(sent)


def play(url: str, frames: int) -> None:
    result: dict[str, object] = {"pts": [], "error": None}
    pts: list[int] = []
    with av.open(url, timeout=10, options={"rw_timeout": "10000000"}) as c:
        ctx = c.streams.video[0].codec_context
        result.update(codec=ctx.name, width=ctx.width, height=ctx.height)
        try:
            for frame in c.decode(video=0):
                assert frame.pts is not None
                pts.append(frame.pts)
                if len(pts) >= frames:
                    break
        except av.error.FFmpegError as exc:
            result["error"] = str(exc)
    result["pts"] = pts
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        publish(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        play(sys.argv[2], int(sys.argv[3]))
