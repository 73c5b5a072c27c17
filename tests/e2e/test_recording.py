"""Recording end to end: ffmpeg pushes, the owning shard records, the API plays back.

Segments are 4 s here (the issue's 30 s range over two segments scales
down to a 6 s range over two 4 s files). Every file is read by ffprobe
(codec, duration) and decoded whole by ffmpeg without a decode error;
ranges come back as one MP4 that PyAV decodes start to end and seeks in;
HTTP Range answers are the right bytes; retention by size deletes the
oldest file; a publisher killed mid-segment leaves a playable file; a full
disk stops the recording, not the stream.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import av
import pytest

from tests.conftest import HubServer, free_port
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e

SEGMENT = 4.0


def _config(tmp_path: Path, rec: Path, **rule: Any) -> Path:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"recordings": str(rec),
                               "record": [{"pattern": "/rec/", "segment": SEGMENT, **rule}]}))
    return cfg


def _api(hub: HubServer, path: str, headers: dict[str, str] | None = None,
         token: str | None = None) -> tuple[int, Any, bytes]:
    """(status, headers (case-insensitive), body)."""
    sep = "&" if "?" in path else "?"
    req = urllib.request.Request(f"{hub.base}{path}{sep}token={token or hub.token()}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name,codec_type",
                          "-of", "json", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and not out.stderr.strip(), (path, out.stderr)
    info: dict[str, Any] = json.loads(out.stdout)
    return info


def decode_errors(path: Path) -> str:
    """ffmpeg's complaints while decoding the whole file ('' when none)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=60)
    return out.stderr.strip() + ("" if out.returncode == 0 else f" (exit {out.returncode})")


def _files(rec: Path, path: str) -> list[Path]:
    return sorted((rec / path.strip("/")).glob("*.mp4"))


def _wait_files(rec: Path, path: str, n: int, timeout: float = 30.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = _files(rec, path)
        if len(files) >= n:
            return files
        time.sleep(0.2)
    raise AssertionError(f"{path}: {len(_files(rec, path))} files after {timeout}s, want {n}")


def test_h264_and_h265_recorded_played_back_and_ranged(hub_factory: Callable[..., HubServer],
                                                       push: Callable[..., Pusher], tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    hub = hub_factory("--shards", "2", "--fronts", "2", "--config", str(_config(tmp_path, rec)))
    pushers = {p: push(p, v, srv=hub) for p, v in (("/rec/avc", "h264"), ("/rec/hevc", "h265"))}
    # Three whole segments each, then the publishers leave (the last file is closed short).
    _wait_files(rec, "/rec/avc", 4)
    _wait_files(rec, "/rec/hevc", 4)
    for p in pushers.values():
        p.stop()
    time.sleep(1.0)

    for path, codec in (("/rec/avc", "h264"), ("/rec/hevc", "hevc")):
        files = _files(rec, path)
        assert len(files) >= 4, files
        for i, f in enumerate(files):
            info = ffprobe(f)
            codecs = {s["codec_type"]: s["codec_name"] for s in info["streams"]}
            assert codecs == {"video": codec, "audio": "aac"}, (f, codecs)
            duration = float(info["format"]["duration"])
            if i < len(files) - 1:  # the last one ends with the publisher
                assert abs(duration - SEGMENT) < 0.5, (f, duration)
            assert decode_errors(f) == "", f

        # The API lists them with start, duration and size.
        status, _, body = _api(hub, f"/api/v1/recordings{path}")
        listing = json.loads(body)
        assert status == 200 and listing["total"] == len(files), listing
        items = listing["recordings"]
        assert [i["name"] for i in items] == [f.name for f in files]
        assert [i["size"] for i in items] == [f.stat().st_size for f in files]
        assert all(abs(i["duration"] - SEGMENT) < 0.5 for i in items[:-1]), items
        first_page = json.loads(_api(hub, f"/api/v1/recordings{path}?page_size=2")[2])
        rest = json.loads(_api(hub, f"/api/v1/recordings{path}?page_size=1000&page_token="
                                    f"{first_page['next_page_token']}")[2])
        assert [i["name"] for i in first_page["recordings"] + rest["recordings"]] == [f.name for f in files]
        assert first_page["total"] == rest["total"] == len(files)

        # 6 s across two files: one MP4, decoded start to end, then a seek in the middle.
        start = _ts(items[0]["start"]) + 2.0
        end = start + 6.0
        status, headers, data = _api(hub, f"/api/v1/recordings{path}/mp4?start={start}&end={end}")
        assert status == 200 and headers["Content-Type"] == "video/mp4", (status, data[:200])
        assert int(headers["Content-Length"]) == len(data) and headers["Accept-Ranges"] == "bytes"
        joined = tmp_path / f"{codec}-range.mp4"
        joined.write_bytes(data)
        assert decode_errors(joined) == ""
        frames, first, last = _decode_all(joined)
        # From the keyframe at or before start (GOP 1 s) to the end of the range.
        assert 6.0 <= (last - first) + 0.04 <= 7.05 and 150 <= frames <= 176, (frames, first, last)
        _seek_middle(joined, 3.0)

        # HTTP Range: the same bytes as the whole answer.
        url = f"/api/v1/recordings{path}/mp4?start={start}&end={end}"
        for header, want, lo, hi in (("bytes=1000-5000", 206, 1000, 5001), ("bytes=-700", 206, len(data) - 700, len(data)),
                                     (f"bytes={len(data) - 10}-", 206, len(data) - 10, len(data)),
                                     ("bytes=0-", 206, 0, len(data))):
            status, headers, part = _api(hub, url, {"Range": header})
            assert status == want and part == data[lo:hi], (header, status, len(part))
            assert headers["Content-Range"] == f"bytes {lo}-{hi - 1}/{len(data)}", headers
        status, headers, _ = _api(hub, url, {"Range": f"bytes={len(data)}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}", (status, headers)

        # An HLS VOD playlist over the same range plays (FFmpeg wants URIs to end
        # in a media extension unless told not to be picky; ours end in a query).
        r = play(f"{hub.base}/api/v1/recordings{path}/index.m3u8?start={start}&end={end}&token={hub.token()}",
                 frames=1000, timeout=30, options={"extension_picky": "0"})
        assert r.video_codec == codec and r.decode_errors == 0 and 150 <= r.video_frames <= 176, (r, r.log[:5])

    # Out of bounds: a range too long, no recording there, a path without the pull right.
    assert _api(hub, "/api/v1/recordings/rec/avc/mp4?start=0&end=100000")[0] == 400
    assert _api(hub, "/api/v1/recordings/rec/avc/mp4?start=1000&end=1010")[0] == 404


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _decode_all(path: Path) -> tuple[int, float, float]:
    with av.open(str(path)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    return len(times), min(times), max(times)


def _seek_middle(path: Path, at: float) -> None:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        c.seek(int(at / vs.time_base), stream=vs, backward=True)
        times = []
        for f in c.decode(vs):
            times.append(float(f.time))
            if len(times) == 30:
                break
    # The keyframe at or before the asked time (GOP 1 s), then frames on from it.
    assert at - 1.05 <= times[0] <= at + 0.01 and times == sorted(times) and len(times) == 30, times


def test_rules_api_retention_by_size_and_rights(hub_factory: Callable[..., HubServer],
                                                push: Callable[..., Pusher], tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"recordings": str(rec)}))
    hub = hub_factory("--shards", "2", "--fronts", "2", "--config", str(cfg))
    token = hub.token()
    # A rule through the API: 4 s files, at most ~2.5 files per path.
    rule = {"pattern": "/ret/", "segment": SEGMENT, "retention": {"max_bytes": 230_000}}
    req = urllib.request.Request(f"{hub.base}/api/v1/recordings?token={token}", data=json.dumps(rule).encode(),
                                 method="POST")
    assert urllib.request.urlopen(req, timeout=10).status == 200
    rules = json.loads(_api(hub, "/api/v1/recordings")[2])
    assert rules["rules"] == [{"pattern": "/ret/", "format": "fmp4", "segment": SEGMENT, "source": "api",
                               "retention": {"max_age": 0.0, "max_bytes": 230_000}}], rules
    saved = json.loads((hub.data / "recordings.json").read_text())
    assert saved == [{k: v for k, v in rules["rules"][0].items() if k != "source"}]

    p = push("/ret/cam", "h264", srv=hub)
    files = _wait_files(rec, "/ret/cam", 2)
    first = files[0].name
    deadline = time.monotonic() + 40
    while (rec / "ret/cam" / first).exists():
        assert time.monotonic() < deadline, "the oldest file was not deleted"
        time.sleep(0.3)
    left = _files(rec, "/ret/cam")
    assert left and left[0].name > first
    sizes = sum(f.stat().st_size for f in left[:-1])
    assert sizes <= 230_000, sizes
    status = json.loads(_api(hub, "/api/v1/recordings")[2])
    assert status["deleted"] >= 1 and status["errors"] == 0, status
    assert [r["path"] for r in status["recording"]] == ["/ret/cam"], status

    # A user with the pull right on other paths only is refused; admins see all.
    user = {"name": "viewer", "password": "viewer-pw-1", "pull": "/other/*"}
    req = urllib.request.Request(f"{hub.base}/api/v1/users?token={token}&update_password=1",
                                 data=json.dumps(user).encode(), method="POST")
    urllib.request.urlopen(req, timeout=10)
    viewer = hub.token("viewer", "viewer-pw-1")
    assert _api(hub, "/api/v1/recordings/ret/cam", token=viewer)[0] == 403
    assert _api(hub, "/api/v1/recordings", token=viewer)[0] == 403
    assert _api(hub, "/api/v1/recordings/ret/cam")[0] == 200

    # Deleting the rule stops the recording; the files stay.
    req = urllib.request.Request(f"{hub.base}/api/v1/recordings?token={token}&pattern=/ret/", method="DELETE")
    assert urllib.request.urlopen(req, timeout=10).status == 200
    assert json.loads(_api(hub, "/api/v1/recordings")[2])["recording"] == []
    assert _files(rec, "/ret/cam") and p.alive()


def test_killed_publisher_and_stopped_server_leave_playable_files(hub_factory: Callable[..., HubServer],
                                                            push: Callable[..., Pusher],
                                                            tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    hub = hub_factory("--shards", "1", "--fronts", "1", "--drain-grace", "0", "--config", str(_config(tmp_path, rec)))
    p = push("/rec/killed", "h264", srv=hub)
    _wait_files(rec, "/rec/killed", 2)
    time.sleep(2.0)  # half way into the second file
    assert p.proc is not None
    p.proc.send_signal(signal.SIGKILL)
    p.proc.wait()
    deadline = time.monotonic() + 10
    while json.loads(_api(hub, "/api/v1/recordings")[2])["recording"]:
        assert time.monotonic() < deadline, "the recording did not end with its publisher"
        time.sleep(0.2)
    last = _files(rec, "/rec/killed")[-1]
    duration = float(ffprobe(last)["format"]["duration"])
    assert 1.0 <= duration <= SEGMENT, duration
    assert decode_errors(last) == ""

    # The server stopped (SIGTERM) mid-segment: the open file is closed whole too.
    push("/rec/stopped", "h264", srv=hub)
    _wait_files(rec, "/rec/stopped", 2)
    time.sleep(2.0)
    assert hub.stop() == 0
    last = _files(rec, "/rec/stopped")[-1]
    duration = float(ffprobe(last)["format"]["duration"])
    assert 1.0 <= duration <= SEGMENT, duration
    assert decode_errors(last) == ""


def test_disk_full_stops_the_recording_not_the_stream(tmp_path: Path, media: Callable[[str], Path]) -> None:
    """The recordings folder is a 400 KB tmpfs in the server's own mount namespace."""
    rec = tmp_path / "rec"
    rec.mkdir()
    hub = _start_in_namespace(tmp_path, rec, "400k", _config(tmp_path, rec))
    try:
        pusher = Pusher(hub.rtsp_url("/rec/full"), media("h264")).start()
        try:
            wait_live(hub, "/rec/full")
            deadline = time.monotonic() + 40
            while "recording stopped" not in hub.log():
                assert time.monotonic() < deadline, hub.log()[-3000:]
                time.sleep(0.3)
            line = next(ln for ln in hub.log().splitlines() if "recording stopped" in ln)
            assert " ERROR " in line and "/rec/full" in line and "ENOSPC" in line, line
            status = json.loads(_api(hub, "/api/v1/recordings")[2])
            assert status["errors"] == 1 and status["recording"] == [], status
            with urllib.request.urlopen(f"{hub.base}/metrics", timeout=10) as r:
                metrics = r.read().decode()
            assert "\nipchub_recording_errors_total 1.0\n" in metrics, metrics[-2000:]
            assert "\nipchub_recordings 0.0\n" in metrics
            # The live stream goes on.
            r = play(f"{hub.base}/streams/rec/full.flv", frames=50, timeout=15)
            assert r.video_frames >= 50 and r.decode_errors == 0 and pusher.alive(), r
        finally:
            pusher.stop()
    finally:
        hub.stop()


def _start_in_namespace(tmp_path: Path, rec: Path, size: str, cfg: Path) -> HubServer:
    """The server under `unshare --mount`, with a small tmpfs on ``rec``
    (a user namespace too when not root)."""
    from tests.conftest import ROOT

    port = free_port()
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    log_path = tmp_path / f"server-{port}.log"
    hub_cmd = [sys.executable, "-m", "hub", "--listen", f"127.0.0.1:{port}", "--data", str(data),
               "--shards", "1", "--fronts", "1", "--config", str(cfg)]
    unshare = ["unshare", "--mount", "--propagation", "private"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    cmd = [*unshare, "sh", "-c", f'mount -t tmpfs -o size={size} tmpfs "{rec}" && exec "$@"', "sh", *hub_cmd]
    env = {**os.environ, "HUB_ADMIN_PASSWORD": "admin"}
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env=env)
    srv = HubServer(port, data, proc, log_path, ["--shards", "1", "--fronts", "1"])
    srv.wait_ready()
    return srv
