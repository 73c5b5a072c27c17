"""Raw RTSP peers for the hostile RTSP tests: a socket client that reads
answers and `$` frames on a thread of its own, Digest answers computed with
hashlib (not with the code under test), and small RTP checks."""

from __future__ import annotations

import hashlib
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass

from hub.media.rtsp import InterleavedFrame, RtspReader, RtspResponse
from hub.media.rtsp.auth import parse_challenge


@dataclass
class Frame:
    at: float
    channel: int
    payload: bytes


class RawRtsp:
    """One RTSP connection; answers queue up, frames are kept with the time
    they arrived, and `closed_at` says when the server closed it."""

    def __init__(self, port: int, timeout: float = 5.0, source: str | None = None) -> None:
        """`source`: the loopback address to connect from (another client)."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(None)
        self.answers: queue.Queue[RtspResponse] = queue.Queue()
        self.frames: list[Frame] = []
        self.closed_at: float | None = None
        self.opened_at = time.monotonic()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        reader = RtspReader()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                reader.feed(data)
                for ev in reader.events():
                    if isinstance(ev, InterleavedFrame):
                        self.frames.append(Frame(time.monotonic(), ev.channel, bytes(ev.payload)))
                    elif isinstance(ev, RtspResponse):
                        self.answers.put(ev)
        except OSError:
            pass
        self.closed_at = time.monotonic()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, timeout: float = 10.0) -> RtspResponse:
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no RTSP answer within {timeout} s (closed: {self.closed_at is not None})") from None

    def ask(self, method: str, uri: str, cseq: int, *headers: tuple[str, str], body: bytes = b"",
            timeout: float = 10.0) -> RtspResponse:
        self.send(request(method, uri, cseq, *headers, body=body))
        resp = self.answer(timeout)
        assert resp.headers.get("CSeq") == str(cseq), resp
        return resp

    def play_tcp(self, url: str) -> str:
        """DESCRIBE, SETUP of track 0 over TCP (channels 0-1), PLAY, with
        CSeq 1-3; the session."""
        assert self.ask("DESCRIBE", url, 1).status == 200
        setup = self.ask("SETUP", f"{url}/trackID=0", 2, ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"))
        assert setup.status == 200, setup
        session = session_of(setup)
        assert self.ask("PLAY", url, 3, ("Session", session)).status == 200
        return session

    def wait_closed(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return self.closed_at is not None

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


def request(method: str, uri: str, cseq: int, *headers: tuple[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {cseq}", *(f"{k}: {v}" for k, v in headers)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def session_of(resp: RtspResponse) -> str:
    value = resp.headers.get("Session")
    assert value, resp
    return value.split(";", 1)[0]


def digest(challenge_value: str, user: str, password: str, method: str, uri: str) -> str:
    """The Authorization a client sends for `method` on `uri` (RFC 2617,
    no qop), answered from a WWW-Authenticate value."""
    challenge = parse_challenge(challenge_value)
    realm, nonce = challenge.realm, challenge.nonce  # type: ignore[union-attr]
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}"')


def rtp_of(frames: list[Frame], channel: int) -> list[tuple[float, int, int]]:
    """(arrival, sequence number, timestamp) of the RTP packets on `channel`."""
    out = []
    for f in frames:
        if f.channel == channel and len(f.payload) >= 12 and f.payload[0] >> 6 == 2:
            seq, ts = struct.unpack_from(">HI", f.payload, 2)
            out.append((f.at, seq, ts))
    return out


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time without a packet between `start` and `end`."""
    points = [start, *(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in zip(points, points[1:]))
