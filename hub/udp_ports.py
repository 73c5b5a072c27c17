"""UDP port pairs for RTP/RTCP (publishers over UDP, players over UDP).

Pairs are even/odd (RTP on the even port, RFC 3550 §11), taken from the
configured range. Each process owns a disjoint slice of the range so shards
and fronts never race for the same port.
"""

from __future__ import annotations

import socket


class PortPairPool:
    def __init__(self, lo: int, hi: int, slice_index: int = 0, slices: int = 1) -> None:
        lo += lo % 2
        pairs = (hi - lo + 1) // 2
        per = max(1, pairs // max(1, slices))
        first = lo + 2 * per * slice_index
        self.ports = self._ports = [first + 2 * i for i in range(per) if first + 2 * i + 1 <= hi]
        self._next = 0
        self._used: set[int] = set()

    def bind_pair(self, host: str = "0.0.0.0") -> tuple[socket.socket, socket.socket]:
        """Bind a free RTP/RTCP pair; OSError when the slice is exhausted."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(len(self._ports)):
            port = self._ports[self._next]
            self._next = (self._next + 1) % len(self._ports)
            if port in self._used:
                continue
            rtp = socket.socket(family, socket.SOCK_DGRAM)
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtp.bind((host, port))
                rtcp.bind((host, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setblocking(False)
            rtcp.setblocking(False)
            self._used.add(port)
            return rtp, rtcp
        raise OSError("no free RTP port pair in the configured range")

    def release(self, port: int) -> None:
        self._used.discard(port)
