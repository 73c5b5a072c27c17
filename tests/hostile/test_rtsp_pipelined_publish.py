"""Issue 12, defect 7: a publisher that pipelines ANNOUNCE and its SETUPs in
one write lost the SETUPs (the front handed the connection to the shard
with the ANNOUNCE only). Now the front hands over the ANNOUNCE as received
and every byte after it, and the shard's engine answers them all in order.

The media is real: ffmpeg publishes to a stand-in server in this test,
which answers it and records its requests; the test then publishes the
same ANNOUNCE and SETUPs to the hub in a single write, RECORDs, and relays
ffmpeg's `$` frames. A PyAV player decodes the stream from the hub."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest

from hub.media.rtsp import InterleavedFrame, RtspReader, RtspRequest
from tests.conftest import HubServer
from tests.e2e.tools import FFMPEG, make_media, play

from .rtsp_peers import RawRtsp, request, session_of

pytestmark = pytest.mark.e2e


class FfmpegPublisher:
    """ffmpeg `-f rtsp -rtsp_transport tcp` against a stand-in server that
    answers every request 200 and keeps them; after RECORD, `frames` gets
    ffmpeg's `$` frames as they come."""

    def __init__(self, media: Path) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(15)
        self.requests: list[RtspRequest] = []
        self.recording = threading.Event()
        self.on_frame: list[bytes] = []
        self.lock = threading.Lock()
        port = self.server.getsockname()[1]
        self.proc = subprocess.Popen(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(media),
             "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{port}/live/pipe"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sink: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        conn.settimeout(30)
        reader = RtspReader()
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                reader.feed(data)
                for ev in reader.events():
                    if isinstance(ev, InterleavedFrame):
                        with self.lock:
                            if self.sink is not None:
                                try:
                                    self.sink.sendall(bytes(ev))
                                except OSError:
                                    return
                    elif isinstance(ev, RtspRequest):
                        self.requests.append(ev)
                        conn.sendall(self._answer(ev))
                        if ev.method == "RECORD":
                            self.recording.set()

    @staticmethod
    def _answer(req: RtspRequest) -> bytes:
        lines = ["RTSP/1.0 200 OK", f"CSeq: {req.headers.get('CSeq')}", "Session: 12345678"]
        if req.method == "OPTIONS":
            lines.append("Public: OPTIONS, ANNOUNCE, SETUP, RECORD, TEARDOWN")
        if req.method == "SETUP":
            lines.append(f"Transport: {req.headers.get('Transport')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def relay_to(self, sock: socket.socket) -> None:
        with self.lock:
            self.sink = sock

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.server.close()


def test_pipelined_announce_and_setups_are_all_answered_and_the_stream_plays(
        hub: HubServer, tmp_path: Path) -> None:
    ffmpeg = FfmpegPublisher(make_media(tmp_path, "h264"))
    conn: RawRtsp | None = None
    try:
        assert ffmpeg.recording.wait(20), "ffmpeg never got to RECORD"
        announce = next(r for r in ffmpeg.requests if r.method == "ANNOUNCE")
        setups = [r for r in ffmpeg.requests if r.method == "SETUP"]
        assert len(setups) == 2 and announce.headers.get("Content-Type") == "application/sdp"
        url = hub.rtsp_url("/live/pipe")
        # ffmpeg's own requests for the hub's URL, without its stand-in
        # session, the ANNOUNCE and both SETUPs in ONE write.
        wire = request("ANNOUNCE", url, 1, ("Content-Type", "application/sdp"), body=announce.body)
        for i, setup in enumerate(setups):
            track = setup.uri.rsplit("/", 1)[1]
            wire += request("SETUP", f"{url}/{track}", 2 + i, ("Transport", setup.headers["Transport"]))
        conn = RawRtsp(hub.port)
        conn.send(wire)
        answers = [conn.answer(10) for _ in range(3)]
        assert [(a.status, a.headers.get("CSeq")) for a in answers] == [(200, "1"), (200, "2"), (200, "3")]
        session = session_of(answers[0])
        assert {session_of(a) for a in answers} == {session}
        for setup, answer in zip(setups, answers[1:]):
            offered = setup.headers["Transport"].split("interleaved=")[1].split(";")[0]
            assert f"interleaved={offered}" in answer.headers["Transport"]
        assert conn.ask("RECORD", url, 4, ("Session", session)).status == 200
        ffmpeg.relay_to(conn.sock)
        r = play(url, frames=40, timeout=20)
        assert r.video_codec == "h264" and (r.width, r.height) == (640, 360), r.log
        assert r.video_frames >= 40 and r.advancing(), r.log
        assert r.audio_codec == "aac" and r.audio_frames > 0
        assert conn.closed_at is None
    finally:
        ffmpeg.close()
        if conn is not None:
            conn.close()
