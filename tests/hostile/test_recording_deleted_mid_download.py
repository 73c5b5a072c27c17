"""A recording deleted while a download of its range was on its way.

An MP4 of a range is joined from several files and streamed file after
file; retention may delete a later file of the range before the download
reaches it (its oldest files go first, and a long download of the oldest
range is what meets them). The answer's Content-Length was sent already,
so nothing can say so in HTTP: the body stops short. Before, the missing
file raised NotFound out of the streaming body: uvicorn logged "Exception
in ASGI application" with a traceback, per download. Now the download
ends cleanly: one INFO line, no traceback, and the connection is closed
(the client sees fewer bytes than promised, then the end of the stream).

A real server; two 20 s recordings of ~10 MB each written into its
recordings folder; a client with a small receive buffer reading in small
pieces, slowly, deletes the second file when the first is on its way.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Callable

from hub.media.mp4 import Fmp4Part, Fmp4Segmenter
from hub.media.mp4.recorder import RecordingFile
from hub.store.recordings import file_name
from tests.conftest import HubServer
from tests.media.mp4.test_init import h264

T0 = 1_700_000_000.0
SECONDS = 20
FPS = 25
FRAME = 20_000


def _recording(wall: float) -> bytes:
    seg = Fmp4Segmenter([h264()], part_target=1.0, segment_target=3600.0)
    writer = RecordingFile(seg.init, seg.tracks)
    out: list[bytes] = []
    events = []
    for i in range(SECONDS * FPS):
        key = i % FPS == 0
        frame = struct.pack(">I", FRAME + 1) + (b"\x65" if key else b"\x41") + bytes(FRAME)
        events += seg.push(0, i * 3600, i * 3600, key, frame, wall if i == 0 else None)
    events += seg.finish()
    for ev in events:
        if isinstance(ev, Fmp4Part):
            out += [bytes(c) for c in writer.part(ev)]
    return b"".join(out)


def test_a_file_deleted_mid_download_ends_it_cleanly(hub_factory: Callable[..., HubServer]) -> None:
    hub = hub_factory("--shards", "1", "--fronts", "1")
    folder = hub.data / "recordings" / "cams" / "x"
    folder.mkdir(parents=True)
    files: list[Path] = []
    for i in range(2):
        wall = T0 + i * SECONDS
        path = folder / file_name(wall)
        path.write_bytes(_recording(wall))
        files.append(path)
    total = sum(p.stat().st_size for p in files)
    target = f"/api/v1/recordings/cams/x/mp4?start={T0}&end={T0 + 2 * SECONDS}&token={hub.token()}"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", hub.port))
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, _, body = bytes(buf).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), head
        length = int(next(ln.split(b":", 1)[1] for ln in head.split(b"\r\n")
                          if ln.lower().startswith(b"content-length:")))
        assert length > total * 0.9
        got = len(body)
        while got < 1024 * 1024:  # slowly into the first file
            chunk = s.recv(4096)
            assert chunk
            got += len(chunk)
            time.sleep(0.0005)
        files[1].unlink()  # retention removes the later file
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break  # the server closed: the length promised cannot be kept
            got += len(chunk)
        else:
            raise AssertionError("the download neither ended nor was closed")
    assert files[0].stat().st_size < got < length, (got, length)
    time.sleep(0.3)
    log = hub.log()
    assert "Traceback" not in log, log[-3000:]
    assert "deleted while being sent" in log, log[-3000:]
