"""Clients other than FFmpeg's: GStreamer and VLC, as cameras' and viewers'
software often is (an NVR's or a kiosk's pipeline is GStreamer more often
than not; VLC is what a user opens a URL with).

They have RTSP, RTMP and HTTP stacks of their own — GStreamer's rtspsrc
tries UDP and its own Transport forms, its rtspclientsink announces and
records with its own SDP, rtmp2sink publishes with its own RTMP; VLC reads
HLS with its own playlist logic — so what FFmpeg accepts is no proof that
they do. Each check decodes what came through: frame sizes, codecs and
timestamps that advance.

Debian's VLC is built without live555, so it has no RTSP client at all;
it is checked on HTTP-FLV, HLS and RTMP. GStreamer's RTSP server
(`gst_camera.py`) is a camera for the route pulls, its webrtcbin
(`gst_whep.py`) a WHEP player.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media, play

pytestmark = pytest.mark.e2e

GST = "gst-launch-1.0"
VLC = "cvlc"
#: One decoded 640x360 I420 frame (what the pushers send).
I420_640x360 = 640 * 360 * 3 // 2
_CHAIN = re.compile(r"GstFakeSink:out: last-message = chain .*?\((\d+) bytes, dts: [^,]*, pts: (\d+):(\d+):([\d.]+)")


def _need(cmd: str) -> None:
    if shutil.which(cmd) is None:
        pytest.fail(f"{cmd} is required for these tests (make sysdeps installs it)")


@dataclass
class GstRun:
    """A gst-launch pipeline ending in `fakesink name=out`, watched for the
    frames it decodes."""

    pipeline: str
    frames: int = 50
    sizes: list[int] = field(default_factory=list)
    pts: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def run(self, timeout: float) -> GstRun:
        proc = subprocess.Popen([GST, "-v", *self.pipeline.split()], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                m = _CHAIN.search(line)
                if m is None:
                    if len(self.log) < 200:
                        self.log.append(line.rstrip()[:300])
                    continue
                h, mi, s = int(m.group(2)), int(m.group(3)), float(m.group(4))
                self.sizes.append(int(m.group(1)))
                self.pts.append(h * 3600 + mi * 60 + s)
                if len(self.sizes) >= self.frames:
                    break
        finally:
            timer.cancel()
            proc.kill()
            proc.wait()
        return self

    def check(self, what: str) -> None:
        assert len(self.sizes) >= self.frames, (what, len(self.sizes), self.log[-20:])
        assert set(self.sizes) == {I420_640x360}, (what, set(self.sizes))
        assert self.pts[-1] > self.pts[0], (what, self.pts[:3], self.pts[-3:])


DECODE = "h264parse ! avdec_h264 ! fakesink name=out silent=false sync=false"


def test_gstreamer_plays_every_transport(hub_factory: Callable[..., HubServer], media: Callable[[str], Path]) -> None:
    """rtspsrc over TCP, UDP (IPv4 and IPv6), the HTTP tunnel (rtsph://)
    and multicast; RTMP (rtmp2src); HTTP-FLV; HLS (hlsdemux): 50 decoded
    frames each, all at once on one stream of a server listening on both
    IPv6 and IPv4."""
    _need(GST)
    hub = hub_factory("--shards", "2", "--fronts", "2", listen_host="[::]")
    host = f"127.0.0.1:{hub.port}"
    depay = "rtph264depay ! " + DECODE
    runs = {
        "rtsp tcp": f"rtspsrc location=rtsp://{host}/live/gst protocols=tcp ! {depay}",
        "rtsp udp": f"rtspsrc location=rtsp://{host}/live/gst protocols=udp ! {depay}",
        # rtspsrc sizes its UDP sockets by the SDP's connection line: an
        # IPv6 client must read `IN IP6` (it failed with IPv4 sockets).
        "rtsp udp ipv6": f"rtspsrc location=rtsp://[::1]:{hub.port}/live/gst protocols=udp ! {depay}",
        "rtsp udp-mcast": f"rtspsrc location=rtsp://{host}/live/gst protocols=udp-mcast ! {depay}",
        "rtsp over http": f"rtspsrc location=rtsph://{host}/live/gst ! {depay}",
        "rtmp": f"rtmp2src location=rtmp://{host}/live/gst ! flvdemux name=d d.video ! {DECODE}",
        "http-flv": f"souphttpsrc location=http://{host}/streams/live/gst.flv ! flvdemux name=d d.video ! {DECODE}",
        "hls": f"souphttpsrc location=http://{host}/streams/live/gst.m3u8 ! hlsdemux ! tsdemux name=d d. ! {DECODE}",
    }
    results = {name: GstRun(p) for name, p in runs.items()}
    with Pusher(hub.rtsp_url("/live/gst"), media("h264")):
        wait_live(hub, "/live/gst")
        threads = [threading.Thread(target=r.run, args=(30.0,)) for r in results.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
    for name, r in results.items():
        r.check(name)


def _gst_push(pipeline: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([GST, "-q", *pipeline.split()], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


#: 640x360 at 25 fps, a keyframe a second, live: H.264 + AAC (what most
#: encoders send) or H.265 + G.711 A-law (what many cameras do; GStreamer's
#: H.265 payloader is not FFmpeg's).
GST_VIDEO = ("videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=25/1 ! {enc} "
             "tune=zerolatency speed-preset={speed} key-int-max=25 bitrate=600 ! {parse} ! {sink}")
GST_AUDIO = {"aac": "audiotestsrc is-live=true ! audio/x-raw,rate=44100,channels=1 ! audioconvert ! voaacenc "
                    "! aacparse ! {sink}",
             "pcm_alaw": "audiotestsrc is-live=true ! audio/x-raw,rate=8000,channels=1 ! alawenc ! {sink}"}
CODECS = {"h264": ("x264enc", "veryfast", "h264parse", "aac"), "hevc": ("x265enc", "ultrafast", "h265parse", "pcm_alaw")}


@pytest.mark.parametrize("how, video", [("rtsp tcp", "h264"), ("rtsp udp", "h264"), ("rtmp", "h264"),
                                        ("rtsp tcp", "hevc")])
def test_gstreamer_publishes(hub: HubServer, how: str, video: str) -> None:
    """rtspclientsink (ANNOUNCE/RECORD, TCP or UDP) and rtmp2sink publish;
    FFmpeg's RTSP client (PyAV) then decodes it."""
    _need(GST)
    enc, speed, parse, audio = CODECS[video]
    path = f"/gst/{how.replace(' ', '_')}_{video}"
    sink = "m." if how == "rtmp" else "s."
    pipeline = " ".join((GST_VIDEO.format(enc=enc, speed=speed, parse=parse, sink=sink),
                         GST_AUDIO[audio].format(sink=sink)))
    if how == "rtmp":  # flvmux's request pads are linked by name: the element comes last
        pipeline += f" flvmux name=m streamable=true ! rtmp2sink location=rtmp://127.0.0.1:{hub.port}{path}"
    else:
        pipeline += f" rtspclientsink name=s protocols={how.split()[1]} location={hub.rtsp_url(path)}"
    proc = _gst_push(pipeline)
    try:
        wait_live(hub, path, timeout=15)
        r = play(hub.rtsp_url(path), frames=50, timeout=20, options={"rtsp_transport": "tcp"})
    finally:
        proc.kill()
        _out, err = proc.communicate()
    assert r.video_codec == video and r.audio_codec == audio, (r, err[-2000:])
    assert (r.width, r.height) == (640, 360)
    assert r.video_frames >= 50 and r.audio_frames > 0 and r.advancing()
    assert r.decode_errors == 0, r.log[:10]


#: Debian's python3, whose gi bindings run GStreamer's RTSP server.
SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA = Path(__file__).with_name("gst_camera.py")


@pytest.mark.parametrize("video, audio, user", [("h264", "aac", "cam"), ("hevc", "pcm_alaw", "")])
def test_route_pulls_a_gstreamer_camera(hub: HubServer, video: str, audio: str, user: str) -> None:
    """A route to GStreamer's RTSP server (its own SDP, RTP-Info, session
    timeout, Digest challenge; H.265 from its own payloader): the first
    player starts the pull, FLV and RTSP players decode it."""
    cam = subprocess.Popen([SYSTEM_PYTHON, str(CAMERA), "h265" if video == "hevc" else "h264", user,
                            "secret" if user else ""], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert cam.stdout is not None
        line = cam.stdout.readline().strip()
        assert line.isdigit(), (line, cam.stderr.read() if cam.poll() is not None and cam.stderr else "")
        creds = f"{user}:secret@" if user else ""
        assert hub.post_json("/api/v1/routes", {"pattern": "/cam/door",
                                                "url": f"rtsp://{creds}127.0.0.1:{line}/stream1"}) == 200
        for url in (f"{hub.base}/streams/cam/door.flv", hub.rtsp_url("/cam/door")):
            r = play(url, frames=50, timeout=20)
            assert r.video_codec == video and r.audio_codec == audio, (url, r)
            assert (r.width, r.height) == (640, 360)
            assert r.video_frames >= 50 and r.advancing() and r.decode_errors == 0, (url, r.log[:10])
    finally:
        cam.kill()
        cam.communicate()


def _camera(codec: str = "h264", user: str = "") -> tuple[subprocess.Popen[str], str]:
    """gst_camera.py started; it and its port."""
    cam = subprocess.Popen([SYSTEM_PYTHON, str(CAMERA), codec, user, "secret" if user else ""],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert cam.stdout is not None
    line = cam.stdout.readline().strip()
    if not line.isdigit():
        cam.kill()
        _, err = cam.communicate()
        raise AssertionError(f"the camera did not start: {line!r} {err[-2000:]}")
    return cam, line


def _packet_times(url: str, seconds: int, out: dict[str, list[tuple[int, int]]]) -> None:
    """ffprobe's (stream index, DTS) of every packet of `url` for `seconds`."""
    argv = ["timeout", str(seconds), "ffprobe", "-v", "error", "-i", url,
            "-show_entries", "packet=stream_index,dts", "-of", "csv=p=0"]
    if url.startswith("rtsp:"):
        argv[5:5] = ["-rtsp_transport", "tcp"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 10)
    for line in run.stdout.splitlines():  # "index,dts" (a trailing "," when a packet has side data)
        index, _, rest = line.partition(",")
        dts = rest.partition(",")[0]
        if index.isdigit() and dts.lstrip("-").isdigit():
            out.setdefault(url, []).append((int(index), int(dts)))


def test_a_camera_that_restarts_its_time_line_is_followed(hub: HubServer) -> None:
    """GStreamer's RTSP server restarts a shared media's time line when
    another client plays it from the start (`Range: npt=0.000-`, what FFmpeg
    and VLC send): every client's RTP timestamps go back to where they
    started. A route pulling such a camera passed the jump on: when an NVR
    (here ffprobe) started watching the camera directly, the route's players
    saw their audio go back ~6.5 s and their video frozen at one DTS for as
    long. Now the route's FLV and RTSP players see every track's DTS rise
    with no step over a second."""
    cam, port = _camera()
    try:
        direct = f"rtsp://127.0.0.1:{port}/stream1"
        assert hub.post_json("/api/v1/routes", {"pattern": "/cam/one", "url": direct}) == 200
        got: dict[str, list[tuple[int, int]]] = {}
        urls = [f"{hub.base}/streams/cam/one.flv", hub.rtsp_url("/cam/one")]
        players = [threading.Thread(target=_packet_times, args=(u, 14, got)) for u in urls]
        for t in players:
            t.start()
        wait_live(hub, "/cam/one")
        threading.Event().wait(5.0)
        r = play(direct, frames=25, timeout=20)  # another client of the camera: it restarts
        assert r.video_frames >= 25, r.log[:10]
        for t in players:
            t.join(30)
        for url in urls:
            for index in (0, 1):
                times = [d for i, d in got.get(url, []) if i == index]
                assert len(times) > 100, (url, index, len(times))
                steps = [b - a for a, b in zip(times, times[1:])]
                assert min(steps) > 0, (url, index, [s for s in steps if s <= 0][:5])
                rate = 1000 if url.endswith(".flv") else (90000 if index == 0 else 44100)
                assert max(steps) < rate, (url, index, max(steps))
    finally:
        cam.kill()
        cam.communicate()


def test_our_pull_leaves_a_cameras_other_viewers_alone(hub: HubServer) -> None:
    """A camera watched directly (an NVR, FFmpeg) when a route starts
    pulling it: our PLAY asked for `Range: npt=0.000-`, on which GStreamer's
    RTSP server restarts a shared media, so the camera's other viewer saw
    its timestamps go back to the start. Now our PLAY has no Range (a live
    source needs none): the other viewer's DTS keeps rising."""
    cam, port = _camera()
    try:
        direct = f"rtsp://127.0.0.1:{port}/stream1"
        assert hub.post_json("/api/v1/routes", {"pattern": "/cam/nvr", "url": direct}) == 200
        got: dict[str, list[tuple[int, int]]] = {}
        viewer = threading.Thread(target=_packet_times, args=(direct, 10, got))
        viewer.start()
        threading.Event().wait(3.0)
        r = play(hub.rtsp_url("/cam/nvr"), frames=25, timeout=20)  # our pull starts
        assert r.video_frames >= 25, r.log[:10]
        viewer.join(30)
        for index in (0, 1):
            times = [d for i, d in got.get(direct, []) if i == index]
            assert len(times) > 100, (index, len(times))
            steps = [b - a for a, b in zip(times, times[1:])]
            assert min(steps) > 0, (index, [s for s in steps if s <= 0][:5])
    finally:
        cam.kill()
        cam.communicate()


def test_gstreamer_webrtc_plays_over_whep(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """GStreamer's webrtcbin (libnice, its own DTLS and SRTP) as a WHEP
    player: 50 frames of 640x360 decoded (`gst_whep.py`)."""
    push("/live/whep", "h264")
    run = subprocess.run([SYSTEM_PYTHON, str(Path(__file__).with_name("gst_whep.py")),
                          f"{hub.base}/streams/live/whep/whep", "50"], capture_output=True, text=True, timeout=60)
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert last == f"50 {I420_640x360}", (last, run.stdout[-2000:], run.stderr[-2000:])


def _vlc_argv(url: str, seconds: int) -> list[str]:
    argv = [VLC, "-q", "-I", "dummy", "--no-media-library", "--run-time", str(seconds), "--play-and-exit",
            url, "--sout", "#std{access=file,mux=ts,dst=-}"]
    if os.geteuid() == 0:  # VLC refuses to run as root
        argv = ["runuser", "-u", "nobody", "--", "env", "HOME=/nonexistent", *argv]
    return argv


def test_route_pulls_a_server_that_only_sends_udp(hub: HubServer) -> None:
    """VLC's RTSP server (as some cameras) answers 461 to RTP over TCP: the
    pull set up over TCP only, so such an upstream could not be pulled at
    all. Now it sets up over UDP after the 461 (as FFmpeg and MediaMTX
    fall back), and FLV and RTSP players decode what it sends."""
    _need(VLC)
    folder = Path(tempfile.mkdtemp(prefix="vlc-src-"))
    try:
        folder.chmod(0o755)  # VLC runs as nobody (it refuses root)
        # Long enough for both players: VLC ends its RTSP sessions when a
        # looped input starts over.
        src = make_media(folder, "h264", seconds=40)
        src.chmod(0o644)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        argv = [VLC, "-q", "-I", "dummy", "--no-media-library", str(src),
                "--sout", f"#rtp{{sdp=rtsp://127.0.0.1:{port}/cam}}"]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "nobody", "--", "env", "HOME=/nonexistent", *argv]
        vlc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert hub.post_json("/api/v1/routes", {"pattern": "/cam/vlc",
                                                    "url": f"rtsp://127.0.0.1:{port}/cam"}) == 200
            for _ in range(100):  # until VLC's RTSP server listens
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    threading.Event().wait(0.1)
            for url in (f"{hub.base}/streams/cam/vlc.flv", hub.rtsp_url("/cam/vlc")):
                r = play(url, frames=50, timeout=20)
                assert r.video_codec == "h264" and r.audio_codec == "aac", (url, r.log[:10])
                assert (r.width, r.height) == (640, 360)
                assert r.video_frames >= 50 and r.advancing() and r.decode_errors == 0, (url, r.log[:10])
        finally:
            vlc.terminate()
            try:
                vlc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                vlc.kill()
                vlc.communicate()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_vlc_plays_flv_hls_rtmp(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """VLC remuxes 8 s of each to MPEG-TS on its stdout (all at once); PyAV
    decodes what it wrote."""
    import av

    _need(VLC)
    push("/live/vlc", "h264")
    host = f"127.0.0.1:{hub.port}"
    urls = {"http-flv": f"http://{host}/streams/live/vlc.flv", "hls": f"http://{host}/streams/live/vlc.m3u8",
            "hls fmp4": f"http://{host}/streams/live/vlc.m3u8?variant=fmp4", "rtmp": f"rtmp://{host}/live/vlc"}
    procs = {name: subprocess.Popen(_vlc_argv(u, 8), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE) for name, u in urls.items()}
    outs = {name: p.communicate(timeout=40) for name, p in procs.items()}
    for name, (ts, err) in outs.items():
        assert len(ts) > 100_000, (name, len(ts), err[-2000:])
        frames, pts, size = 0, [], set()
        with av.open(io.BytesIO(ts), format="mpegts") as c:
            v = c.streams.video[0]
            assert v.codec_context.name == "h264", name
            assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac", name
            for f in c.decode(v):
                frames += 1
                size.add((f.width, f.height))
                if f.time is not None:
                    pts.append(f.time)
        # 8 s at 25 fps, less what a late start (HLS: a whole segment) leaves out
        assert frames >= 75, (name, frames)
        assert size == {(640, 360)}, (name, size)
        assert pts[-1] - pts[0] >= 3.0, (name, pts[:2], pts[-2:])


def test_gstreamer_and_vlc_are_real_programs() -> None:
    """What the tests above drive is there (make sysdeps), with the elements
    they use: a missing plugin must fail here, not look like a server bug."""
    _need(GST)
    _need(VLC)
    missing = [e for e in ("rtspsrc", "rtspclientsink", "rtmp2src", "rtmp2sink", "flvmux", "flvdemux", "hlsdemux",
                           "tsdemux", "souphttpsrc", "x264enc", "x265enc", "voaacenc", "alawenc", "webrtcbin", "nicesrc", "avdec_h264", "rtph264depay")
               if subprocess.run(["gst-inspect-1.0", e], capture_output=True, timeout=30).returncode != 0]
    assert not missing, missing
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "gi.require_version('GstWebRTC', '1.0')"],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, probe.stderr
