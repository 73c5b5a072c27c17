"""Helpers for the RTMP unit tests: a scripted client and feeding helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from hub.media import amf0
from hub.media.rtmp import NEED_DATA, PAUSED, RtmpServerConnection
from hub.media.rtmp.chunk import ChunkReader, ChunkWriter
from hub.media.rtmp.command import Command
from hub.media.rtmp.constants import MSG_COMMAND_AMF0, MSG_DATA_AMF0
from hub.media.rtmp.events import Event
from hub.media.rtmp.handshake import client_c2, client_hello, Hello
from hub.media.rtmp.message import RtmpMessage

DATA = Path(__file__).resolve().parent.parent.parent / "data"


class Counter:
    """Deterministic 'random' bytes: SHA-256 in counter mode."""

    def __init__(self, seed: bytes = b"rtmp") -> None:
        self.seed = seed
        self.n = 0

    def __call__(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            out += hashlib.sha256(self.seed + self.n.to_bytes(8, "big")).digest()
            self.n += 1
        return bytes(out[:size])


def drain(conn: RtmpServerConnection) -> list[Event]:
    """Every event until NEED_DATA or PAUSED."""
    out: list[Event] = []
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA or ev is PAUSED:
            return out
        out.append(ev)


def feed(conn: RtmpServerConnection, data: bytes, pieces: Iterable[int] | None = None,
         now: float = 0.0) -> list[Event]:
    """Feed ``data`` whole, or in pieces of the given sizes, draining after each."""
    events: list[Event] = []
    if pieces is None:
        conn.receive_data(data, now)
        return drain(conn)
    pos = 0
    for size in pieces:
        conn.receive_data(data[pos:pos + size], now)
        events += drain(conn)
        pos += size
    conn.receive_data(data[pos:], now)
    return events + drain(conn)


def read_messages(data: bytes, chunk_size: int = 128) -> list[RtmpMessage]:
    reader = ChunkReader(chunk_size)
    reader.feed(data)
    out = []
    while (m := reader.next_message()) is not None:
        out.append(m)
    return out


class Client:
    """A scripted RTMP client: handshake, then commands and media through a
    compressing chunk writer (the header choices FFmpeg makes)."""

    def __init__(self, scheme: int | None = 0, chunk_size: int = 128) -> None:
        self.random = Counter(b"client")
        self.c0c1, self.c1 = client_hello(self.random, scheme)
        self.writer = ChunkWriter(compress=True)
        self.prefix = b""
        if chunk_size != 128:
            self.prefix = self.writer.set_chunk_size(chunk_size)
        self.tid = 0.0

    def c2(self, s0s1s2: bytes) -> bytes:
        return client_c2(Hello.parse(s0s1s2[1:1537], b""), self.random)

    def command(self, name: str, obj: amf0.AmfValue = None, *args: amf0.AmfValue,
                stream_id: int = 0, csid: int = 3) -> bytes:
        self.tid += 1
        body = bytes(Command(name, self.tid, obj, args))
        return self.writer.write(csid, MSG_COMMAND_AMF0, stream_id, 0, body)

    def data(self, *values: amf0.AmfValue) -> bytes:
        return self.writer.write(4, MSG_DATA_AMF0, 1, 0, amf0.encode(*values))

    def media(self, type_id: int, ts: int, body: bytes) -> bytes:
        return self.writer.write(6 if type_id == 9 else 4, type_id, 1, ts, body)

    def connect(self, app: str = "live", **extra: amf0.AmfValue) -> bytes:
        obj: dict[str, amf0.AmfValue] = {"app": app, "type": "nonprivate",
                                          "flashVer": "FMLE/3.0", "tcUrl": f"rtmp://h/{app}"}
        obj.update(extra)
        return self.prefix + self.command("connect", obj)

    def publish_setup(self, name: str = "cam1") -> bytes:
        return b"".join((self.command("releaseStream", None, name),
                         self.command("FCPublish", None, name),
                         self.command("createStream", None),
                         self.command("publish", None, name, "live", stream_id=1, csid=8)))

    def play_setup(self, name: str = "cam1") -> bytes:
        return b"".join((self.command("createStream", None),
                         self.command("play", None, name, -1000.0, stream_id=1, csid=8)))


def handshake(conn: RtmpServerConnection, client: Client) -> bytes:
    """Run the handshake; return what the server sent."""
    conn.receive_data(client.c0c1, 0.0)
    assert conn.next_event() is NEED_DATA
    answer = conn.data_to_send()
    conn.receive_data(client.c2(answer), 0.0)
    return answer


def commands_in(data: bytes, chunk_size: int = 128) -> list[tuple[int, Command]]:
    """(message stream id, command) of each AMF0 command in server output."""
    out = []
    for m in read_messages(data, chunk_size):
        if m.type_id == MSG_COMMAND_AMF0:
            out.append((m.stream_id, Command.parse(m.body)))
    return out
