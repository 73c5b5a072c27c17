"""RTMP peers for the server's end-to-end tests (no tests here).

- `FlvPusher`: the FFmpeg CLI pushing a file in a loop, in real time, as
  `-f flv rtmp://...` (H.264+AAC; FFmpeg 5.1 refuses HEVC in FLV).
- `hevc_pusher`: PyAV's bundled FFmpeg (8.x) pushing H.265 as Enhanced RTMP
  (`hvc1`), in real time, from a child process (`pyav_push.py`).
- `LegacyHevcPusher`: H.265 with the legacy codec id 12, which no FFmpeg
  writes: an H.265+AAC file demuxed by PyAV, each packet an FLV tag made by
  our `FlvMuxer(hevc_mode="legacy")` and chunked by the phase-1 test client,
  paced in real time, from a thread.
- `ffprobe_frames`: the FFmpeg CLI playing `rtmp://` and listing frames.
- `RtmpWatcher`: the hostile suite's watcher player, over RTMP.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from hub.media.flv import TAG_AUDIO, TAG_VIDEO, FlvMuxer
from hub.media.rtmp.chunk import ChunkReader
from hub.media.rtmp.handshake import check_server_answer
from tests.e2e.tools import FFMPEG, Pusher
from tests.hostile.harness import FlvWatcher
from tests.media.rtmp.rtmp_testkit import Client

HERE = Path(__file__).resolve().parent


class FlvPusher(Pusher):
    """`Pusher` with `-f flv` to an rtmp:// URL instead of RTSP."""

    def start(self) -> FlvPusher:
        cmd = [FFMPEG, "-hide_banner", "-loglevel", "warning", "-re", "-stream_loop", "-1",
               "-i", str(self.media), "-c", "copy", "-f", "flv", self.url]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, daemon=True).start()
        return self


def hevc_pusher(url: str, seconds: int = 30) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(HERE / "pyav_push.py"), url, str(seconds)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rtmp_setup(port: int, name: str, app: str = "live", chunk_size: int = 4096,
               timeout: float = 10.0) -> tuple[socket.socket, Client]:
    """A connected, handshaken socket with connect..publish sent (answers unread)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    client = Client(scheme=0, chunk_size=chunk_size)
    sock.sendall(client.c0c1)
    answer = recv_exactly(sock, 3073)
    check_server_answer(answer, client.c1)
    sock.sendall(client.c2(answer) + client.connect(app) + client.publish_setup(name))
    return sock, client


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        part = sock.recv(n - len(out))
        if not part:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += part
    return bytes(out)


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    """Bytes from the server until `marker` shows up in them (or it closes)."""
    sock.settimeout(timeout)
    data = bytearray()
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return bytes(data)


class LegacyHevcPusher:
    """H.265 (codec id 12) + AAC over RTMP from our own client, in real time."""

    def __init__(self, port: int, name: str, media: Path) -> None:
        self.port, self.name, self.media = port, name, media
        self.error: str | None = None
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LegacyHevcPusher:
        self._thread.start()
        return self

    def _run(self) -> None:
        import av

        try:
            sock, client = rtmp_setup(self.port, self.name)
            with sock:
                answer = read_until(sock, b"NetStream.Publish.Start")
                if b"NetStream.Publish.Start" not in answer:
                    raise AssertionError(f"publish refused: {answer[-200:]!r}")
                flv = FlvMuxer("h265", "legacy")
                with av.open(str(self.media)) as c:
                    vs, aus = c.streams.video[0], c.streams.audio[0]
                    assert vs.codec_context.extradata and aus.codec_context.extradata
                    tags = [flv.video_sequence_header(vs.codec_context.extradata),
                            flv.audio_sequence_header(aus.codec_context.extradata)]
                    sock.sendall(b"".join(self._message(client, t) for t in tags))
                    start = time.monotonic()
                    for packet in c.demux(vs, aus):
                        if self._stop.is_set():
                            return
                        if packet.dts is None or not packet.size:
                            continue
                        tb = packet.time_base
                        dts_ms = int(packet.dts * tb * 1000)
                        if packet.stream is vs:
                            pts_ms = int((packet.pts if packet.pts is not None else packet.dts) * tb * 1000)
                            tag = flv.video_tag(bytes(packet), dts_ms, pts_ms, bool(packet.is_keyframe))
                        else:
                            tag = flv.audio_tag(bytes(packet), dts_ms)
                        wait = start + dts_ms / 1000 - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        sock.sendall(self._message(client, tag))
                        self.sent += 1
                    self._stop.wait(1.0)
        except Exception as e:  # noqa: BLE001 - the test reports it
            self.error = f"{type(e).__name__}: {e}"

    @staticmethod
    def _message(client: Client, tag: bytes) -> bytes:
        """One FLV tag (header, body, PreviousTagSize) as an RTMP message on stream 1."""
        size = int.from_bytes(tag[1:4], "big")
        ts = int.from_bytes(tag[4:7], "big") | tag[7] << 24
        return client.media(tag[0], ts, tag[11:11 + size])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def ffprobe_frames(url: str, seconds: float = 2.0, timeout: float = 30.0) -> list[tuple[float, int, int, str]]:
    """(pts, width, height, codec) of each video frame the FFmpeg CLI decodes
    from `url` in `seconds` of reading."""
    r = subprocess.run(["ffprobe", "-hide_banner", "-loglevel", "error", "-rw_timeout", "10000000",
                        "-read_intervals", f"%+{seconds}", "-select_streams", "v",
                        "-show_entries", "frame=pts_time,width,height:stream=codec_name",
                        "-of", "csv=p=0", url], capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    frames: list[tuple[float, int, int, str]] = []
    codec = ""
    for line in r.stdout.decode().split():
        fields = line.split(",")
        if len(fields) == 1:
            codec = fields[0]
        elif len(fields) == 3 and fields[0] not in ("", "N/A"):
            frames.append((float(fields[0]), int(fields[1]), int(fields[2]), codec))
    return [(t, w, h, codec) for t, w, h, _ in frames]


class RtmpWatcher(FlvWatcher):
    """`FlvWatcher` over RTMP: plays `rtmp://127.0.0.1:port/live/NAME` on a
    plain socket and records when each audio/video message arrived."""

    def start(self, frames: int = 10, timeout: float = 10.0) -> RtmpWatcher:
        app, _, name = self.path.strip("/").partition("/")
        self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        client = Client()
        self._sock.sendall(client.c0c1)
        answer = recv_exactly(self._sock, 3073)
        check_server_answer(answer, client.c1)
        q = f"?{self.query}" if self.query else ""
        self._sock.sendall(client.c2(answer) + client.connect(app) + client.play_setup(name + q))
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self.video_count() < frames:
            if self.error is not None or time.monotonic() > deadline:
                raise AssertionError(f"RTMP watcher of {self.path} did not start playing: {self.error}")
            time.sleep(0.05)
        return self

    def _run(self) -> None:
        assert self._sock is not None
        sock = self._sock
        sock.settimeout(0.5)
        reader = ChunkReader()
        try:
            while not self._stop.is_set():
                try:
                    chunk = sock.recv(1 << 16)
                except socket.timeout:
                    continue
                if not chunk:
                    self.error = "connection closed by the server"
                    break
                now = time.monotonic()
                reader.feed(chunk)
                got = []
                while (m := reader.next_message()) is not None:
                    if m.type_id in (TAG_AUDIO, TAG_VIDEO):
                        got.append((now, m.type_id))
                with self._lock:
                    self.arrivals.extend(got)
        except Exception as e:  # noqa: BLE001 - whatever it was, the test reports it
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.ended_at = time.monotonic()
