"""The RTMP engine against real FFmpeg, through the test-only asyncio glue.

The system's ffmpeg (5.1 here) publishes H.264+AAC and plays; PyAV's bundled
FFmpeg (8.x) publishes H.265 as Enhanced RTMP (``hvc1``), which FFmpeg only
sends from 6.1 on, and decodes what we play back.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from hub.media.rtmp import Connect, HandshakeDone, Publish
from hub.media.rtmp.handshake import check_server_answer, client_c2, client_hello
from hub.media.rtmp.media import avc_parameter_sets, hevc_parameter_sets
from rtmp_glue import RtmpGlue
from rtmp_testkit import Counter

pytestmark = pytest.mark.e2e

PEER = Path(__file__).resolve().parent / "pyav_peer.py"
SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine"]
H264_AAC = ["-c:v", "libx264", "-g", "25", "-c:a", "aac"]


@pytest.fixture
def glue() -> Iterator[RtmpGlue]:
    with RtmpGlue() as g:
        yield g


def _ffmpeg_publish(url: str, seconds: float, realtime: bool = True) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", *(["-re"] if realtime else []),
            *SOURCE, *H264_AAC, "-t", str(seconds), "-f", "flv", url]


def _wait(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _pyav_play(url: str, frames: int = 1000) -> dict[str, object]:
    r = subprocess.run([sys.executable, str(PEER), "play", url, str(frames)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    result: dict[str, object] = json.loads(r.stdout)
    return result


def _ffprobe_frames(url: str) -> list[tuple[float, int, int]]:
    r = subprocess.run(["ffprobe", "-hide_banner", "-loglevel", "error", "-rw_timeout", "10000000",
                        "-select_streams", "v", "-show_entries", "frame=pts_time,width,height",
                        "-of", "csv=p=0", url], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    out = []
    for line in r.stdout.decode().split():
        fields = line.split(",")
        out.append((float(fields[0]), int(fields[1]), int(fields[2])))
    return out


def _advancing(pts: list[int]) -> bool:
    return len(pts) > 1 and all(b > a for a, b in zip(pts, pts[1:]))


def test_ffmpeg_publishes_h264_aac_and_players_decode(glue: RtmpGlue) -> None:
    url = f"rtmp://127.0.0.1:{glue.port}/live/cam1"
    r = subprocess.run(_ffmpeg_publish(url, 2), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    _wait(lambda: glue.connections[0].closed)
    log = glue.connections[0]
    assert log.error is None
    assert log.events[0] == HandshakeDone(0, bytes((9, 0, 124, 2)))
    connect = log.events[1]
    assert isinstance(connect, Connect) and connect.app == "live"
    assert connect.tc_url == f"rtmp://127.0.0.1:{glue.port}/live"
    assert log.events[2] == Publish("/live/cam1", "live", "cam1", {}, "live")

    rec = glue.recordings["/live/cam1"]
    assert rec.unpublished
    assert (rec.metadata["width"], rec.metadata["height"]) == (320.0, 240.0)
    video = [u for u in rec.units if u.kind == "video"]
    audio = [u for u in rec.units if u.kind == "audio"]
    assert video[0].config and video[0].codec == "h264" and video[0].data[0] == 1
    sps, pps = avc_parameter_sets(video[0].data)
    assert sps[0][0] & 0x1F == 7 and pps[0][0] & 0x1F == 8
    frames = video[1:]
    assert len(frames) == 50 and not any(f.config for f in frames)
    assert [f.dts for f in frames] == [40 * i for i in range(50)]
    assert [f.dts for f in frames if f.keyframe] == [0, 1000]  # -g 25
    assert sorted(f.pts for f in frames) == [f.pts for f in sorted(frames, key=lambda f: f.pts)]
    assert audio[0].config and audio[0].codec == "aac" and audio[0].data[:2] == b"\x12\x08"
    adts = [a.dts for a in audio[1:]]
    assert len(adts) >= 80 and adts == sorted(adts) and adts[-1] > 1900

    # Played back (same recording, through the shared play mux) and decoded.
    played = _pyav_play(url)
    assert (played["codec"], played["width"], played["height"]) == ("h264", 320, 240)
    pts = played["pts"]
    assert isinstance(pts, list) and len(pts) == 50 and _advancing(pts)
    assert played["error"] is None
    probed = _ffprobe_frames(url)  # FFmpeg 5.1's player checks our digest S1/S2
    assert len(probed) == 50 and {(w, h) for _, w, h in probed} == {(320, 240)}
    assert _advancing([int(t * 1000) for t, _, _ in probed])
    assert all(c.error is None for c in glue.connections)


def test_pyav_publishes_h265_as_enhanced_rtmp(glue: RtmpGlue) -> None:
    url = f"rtmp://127.0.0.1:{glue.port}/live/hevc"
    r = subprocess.run([sys.executable, str(PEER), "publish", url, "libx265", "2"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    _wait(lambda: glue.connections[0].closed)
    assert glue.connections[0].error is None
    rec = glue.recordings["/live/hevc"]
    assert rec.metadata["videocodecid"] == float(int.from_bytes(b"hvc1", "big"))
    video = [u for u in rec.units if u.kind == "video"]
    assert video[0].config and video[0].codec == "h265"
    vps, sps, pps = hevc_parameter_sets(video[0].data)
    assert [(n[0] >> 1) & 0x3F for n in (vps[0], sps[0], pps[0])] == [32, 33, 34]
    frames = video[1:]
    assert len(frames) == 50 and all(f.codec == "h265" for f in frames)
    assert [f.dts for f in frames] == [40 * i for i in range(50)] and frames[0].keyframe

    played = _pyav_play(url)
    assert (played["codec"], played["width"], played["height"]) == ("hevc", 320, 240)
    pts = played["pts"]
    assert isinstance(pts, list) and len(pts) == 50 and _advancing(pts)


def test_credentials_in_the_url_reach_the_events(glue: RtmpGlue) -> None:
    for path in ("live/cam2?user=u&pass=p", "live?token=abc/cam3"):
        r = subprocess.run(_ffmpeg_publish(f"rtmp://127.0.0.1:{glue.port}/{path}", 0.2, False),
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
    _wait(lambda: len(glue.connections) == 2 and glue.connections[1].closed)
    publishes = [e for c in glue.connections for e in c.events if isinstance(e, Publish)]
    assert publishes == [Publish("/live/cam2", "live", "cam2", {"user": "u", "pass": "p"}, "live"),
                         Publish("/live/cam3", "live", "cam3", {"token": "abc"}, "live")]


def test_refusals_reach_ffmpeg(glue: RtmpGlue) -> None:
    glue.reject_apps.add("private")
    r = subprocess.run(_ffmpeg_publish(f"rtmp://127.0.0.1:{glue.port}/private/x", 0.2, False),
                       capture_output=True, timeout=60)
    assert r.returncode != 0 and b"Connection rejected." in r.stderr
    r = subprocess.run(["ffprobe", "-hide_banner", "-loglevel", "error",
                        f"rtmp://127.0.0.1:{glue.port}/live/none"], capture_output=True, timeout=60)
    assert r.returncode != 0 and b"Stream not found." in r.stderr


def test_second_publisher_refused_and_garbage_closes_only_its_connection(glue: RtmpGlue) -> None:
    url = f"rtmp://127.0.0.1:{glue.port}/live/busy"
    first = subprocess.Popen(_ffmpeg_publish(url, 4), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: "/live/busy" in glue.recordings and len(glue.recordings["/live/busy"].units) > 5)
        second = subprocess.run(_ffmpeg_publish(url, 0.2, False), capture_output=True, timeout=60)
        assert not glue.recordings["/live/busy"].unpublished, "the first publisher ended too soon"
        assert second.returncode != 0 and b"already publishing" in second.stderr
        # A raw client: a good handshake, then a chunk declaring a 16 MiB command.
        with socket.create_connection(("127.0.0.1", glue.port), timeout=10) as s:
            c0c1, c1 = client_hello(Counter(b"raw"), 0)
            s.sendall(c0c1)
            answer = b""
            while len(answer) < 3073:
                part = s.recv(3073 - len(answer))
                assert part
                answer += part
            s1 = check_server_answer(answer, c1)
            s.sendall(client_c2(s1, Counter(b"c2")) + bytes.fromhex("03 000000 ffffff 14 00000000"))
            assert s.recv(100) == b""  # closed by the server
        assert first.wait(30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(5)
    _wait(lambda: glue.recordings["/live/busy"].unpublished)
    errors = [c.error for c in glue.connections]
    assert errors[0] is None and errors[1] is None
    assert errors[2] is not None and "message of type 20" in errors[2]
    frames = [u for u in glue.recordings["/live/busy"].units if u.kind == "video" and not u.config]
    assert len(frames) == 100  # the publisher lost nothing
