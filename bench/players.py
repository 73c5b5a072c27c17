"""Load generator: N HTTP-FLV or WS-FLV players that read and count bytes.

`python bench/players.py URL N SECONDS [http|ws]` prints one JSON line:
per-player byte counts over the measured window (after a 2 s warm-up).
Runs in its own process so its CPU is never counted as the server's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from urllib.parse import urlsplit

import uvloop


class Player(asyncio.Protocol):
    def __init__(self) -> None:
        self.bytes = 0
        self.head_done = False

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)


async def main(url: str, n: int, seconds: float, mode: str) -> None:
    loop = asyncio.get_running_loop()
    u = urlsplit(url)
    players: list[Player] = []
    if mode == "ws":
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {u.path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    else:
        req = f"GET {u.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()

    async def connect() -> None:
        t, p = await loop.create_connection(Player, u.hostname, u.port)
        t.write(req)
        players.append(p)

    for i in range(0, n, 50):
        await asyncio.gather(*(connect() for _ in range(min(50, n - i))))
    await asyncio.sleep(2.0)
    start = [p.bytes for p in players]
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    got = [p.bytes - s for p, s in zip(players, start)]
    print(json.dumps({"n": len(players), "elapsed": elapsed, "bytes": got}), flush=True)


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "http"))
