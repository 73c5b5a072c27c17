"""UDP port pairs for RTP/RTCP (publishers over UDP, players over UDP).

Pairs are even/odd (RTP on the even port, RFC 3550 §11), taken from the
configured range. Each process owns a disjoint slice of the range so shards
and fronts never race for the same port.

One client address (IPv6: its /64, `hub.client_key`) holds at most a share
of a slice (`pairs_per_client`): an eighth of it, and never fewer than 32
(16 streams of video and audio), so one client opening connections and
setting up over UDP cannot take the pairs every other player (in a front)
or publisher (in a shard) needs. Past it, and with the slice used up,
`bind_for` raises OSError, which SETUP answers 461: FFmpeg, VLC and
gortsplib then set up over TCP, publishing as playing. An NVR pulling (or a
recorder pushing) more streams than that over UDP from one address needs a
wider `rtp_ports`: its share grows with the slice.
"""

from __future__ import annotations

import socket
from collections import Counter

from .client_key import client_key

MIN_PAIRS_PER_CLIENT = 32
SHARE_PER_CLIENT = 8


def pairs_per_client(slice_pairs: int) -> int:
    """How many of a slice's `slice_pairs` one client address may hold."""
    return max(MIN_PAIRS_PER_CLIENT, slice_pairs // SHARE_PER_CLIENT)


class PortPairPool:
    def __init__(self, lo: int, hi: int, slice_index: int = 0, slices: int = 1) -> None:
        lo += lo % 2
        pairs = (hi - lo + 1) // 2
        per = max(1, pairs // max(1, slices))
        first = lo + 2 * per * slice_index
        self.ports = self._ports = [first + 2 * i for i in range(per) if first + 2 * i + 1 <= hi]
        self._next = 0
        self._used: set[int] = set()
        self._held: Counter[str] = Counter()  # pairs bound by `bind_for`, by client key
        self.per_client = pairs_per_client(len(self.ports))

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

    def bind_for(self, client: str, host: str, replacing: bool = False) -> tuple[socket.socket, socket.socket]:
        """A pair for a peer at `client`, bound on `host` (`replacing`: one
        it holds is given back right after); OSError past the client's
        share or with the slice used up. Give it back with `release_for`."""
        key = client_key(client)
        if self._held[key] - replacing >= self.per_client:
            raise OSError(f"{client} holds {self.per_client} RTP port pairs already")
        pair = self.bind_pair(host)
        self._held[key] += 1
        return pair

    def release_for(self, client: str, port: int) -> None:
        key = client_key(client)
        self.release(port)
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]
