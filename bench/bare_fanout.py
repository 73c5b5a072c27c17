"""The bare reference fan-out: write the same FLV bytes to N sockets, nothing else.

`python bench/bare_fanout.py SOURCE_URL PORT` reads an HTTP-FLV stream from
SOURCE_URL once, splits it into tags, and serves HTTP on PORT: every client
gets the FLV header and then each tag as it arrives, one `transport.write`
per tag per client, on uvloop. It is the floor our server's fan-out is
measured against: no ring, no muxing, no consumers bookkeeping.
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit

import uvloop

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n"


class Client(asyncio.Protocol):
    def __init__(self, clients: set[asyncio.Transport], start: list[bytes]) -> None:
        self.clients = clients
        self.start = start
        self.t: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.t is not None and self.t not in self.clients and b"\r\n\r\n" in data:
            self.t.write(HEAD + b"".join(self.start))
            self.clients.add(self.t)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.t is not None:
            self.clients.discard(self.t)


class Source(asyncio.Protocol):
    """Reads the upstream FLV; each read's complete tags go out as one write
    per client (the same rule as our server: one write per turn)."""

    def __init__(self, clients: set[asyncio.Transport], start: list[bytes]) -> None:
        self.clients = clients
        self.start = start
        self.buf = bytearray()
        self.in_head = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.in_head:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0 or len(self.buf) < end + 4 + 13:
                return
            self.start.append(bytes(self.buf[end + 4:end + 17]))
            del self.buf[:end + 17]
            self.in_head = False
        pos, n = 0, len(self.buf)
        while n - pos >= 11:
            size = int.from_bytes(self.buf[pos + 1:pos + 4], "big")
            if n - pos < 15 + size:
                break
            pos += 15 + size
        if not pos:
            return
        blob = bytes(self.buf[:pos])
        del self.buf[:pos]
        if len(self.start) < 2:  # metadata + sequence headers: the first read
            self.start.append(blob)
            return
        for t in list(self.clients):
            t.write(blob)


async def main(source: str, port: int) -> None:
    clients: set[asyncio.Transport] = set()
    start: list[bytes] = []  # FLV header, then metadata and sequence headers
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: Client(clients, start), "127.0.0.1", port, reuse_address=True)
    u = urlsplit(source)
    t, _ = await loop.create_connection(lambda: Source(clients, start), u.hostname or "127.0.0.1", u.port or 80)
    t.write(f"GET {u.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2])))
