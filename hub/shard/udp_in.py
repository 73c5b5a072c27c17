"""UDP receive endpoints for a publisher that sends RTP/RTCP over UDP.

One `UdpPairReceiver` per track SETUP with `client_port=`: the RTP and RTCP
sockets of a server port pair. They are read straight from the loop's
reader callback (`loop.add_reader`) into one preallocated buffer, draining
every datagram already queued, instead of a datagram protocol per socket:
setup stays synchronous (no await in the middle of answering SETUP), and a
datagram costs one `recvfrom_into` and no buffer allocation of its own
(the RTP parser copies the payload once anyway).

Only datagrams from the publisher's host *and* the ports it declared in
SETUP (`client_port=`: RTP from the first, RTCP from the second, as
gortsplib/MediaMTX key them) are taken, so neither a stranger nor another
host behind the publisher's NAT can inject into a stream. Each socket is
connected to its declared source, so the kernel drops anything else before
it reaches us: a stranger flooding a publisher's port cost the shard a
read and a check per datagram (64 a wake-up, as long as the flood lasted:
91% of its core at 207,000 datagrams a second, `bench/udp_flood.py`); now
it costs the shard nothing. What still arrives from elsewhere (a
connect the kernel refused) is dropped and counted. A publisher whose NAT
rewrites its source ports must publish over TCP (interleaved).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Callable

__all__ = ["UdpPairReceiver", "MAX_DATAGRAM", "DRAIN_LIMIT"]

MAX_DATAGRAM = 65536
DRAIN_LIMIT = 64  # datagrams per wake-up per socket, so one busy socket cannot starve the loop

Sink = Callable[[memoryview], None]


class _Socket:
    __slots__ = ("sock", "sink", "fd", "source_port")

    def __init__(self, sock: socket.socket, sink: Sink, source_port: int) -> None:
        self.sock = sock
        self.sink = sink
        self.fd = sock.fileno()
        self.source_port = source_port


class UdpPairReceiver:
    """Reads an RTP/RTCP socket pair for one publisher track.

    `on_bytes(n)` gets the size of every datagram accepted (the stream's
    `size` counts them); `rtp` / `rtcp` get the datagram as a memoryview into
    a buffer reused for the next datagram: consume or copy it before
    returning.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, rtp: socket.socket, rtcp: socket.socket,
                 peer_host: str, peer_ports: tuple[int, int],
                 on_bytes: Callable[[int], None], on_release: Callable[[int], None]) -> None:
        self.loop = loop
        self.port = int(rtp.getsockname()[1])
        self.peer_host = peer_host
        self.rejected = 0  # datagrams from another host or another port than the publisher declared
        self._buf = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buf)
        self._on_bytes = on_bytes
        self._on_release = on_release
        self.rtp_sink: Sink = _drop
        self.rtcp_sink: Sink = _drop
        self._socks = (_Socket(rtp, self._rtp, peer_ports[0]), _Socket(rtcp, self._rtcp, peer_ports[1]))
        for s in self._socks:
            try:
                s.sock.connect((peer_host, s.source_port))
            except OSError:
                pass  # unconnected: `_readable` still drops other sources
        self._closed = False
        for s in self._socks:
            loop.add_reader(s.fd, self._readable, s)

    @property
    def ports(self) -> tuple[int, int]:
        return self.port, self.port + 1

    def _rtp(self, data: memoryview) -> None:
        self.rtp_sink(data)

    def _rtcp(self, data: memoryview) -> None:
        self.rtcp_sink(data)

    def _readable(self, s: _Socket) -> None:
        buf = self._buf
        view = self._view
        recv = s.sock.recvfrom_into
        sink = s.sink
        host = self.peer_host
        source_port = s.source_port
        on_bytes = self._on_bytes
        for _ in range(DRAIN_LIMIT):
            try:
                n, addr = recv(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable reported on the socket
                return
            if addr[1] != source_port or addr[0] != host:
                self.rejected += 1
                continue
            on_bytes(n)
            sink(view[:n])
            if self._closed:
                return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for s in self._socks:
            try:
                self.loop.remove_reader(s.fd)
            except (ValueError, RuntimeError):  # loop already closed
                pass
            s.sock.close()
        self._on_release(self.port)


def _drop(data: memoryview) -> None:
    """Sink before RECORD: data is counted, not ingested."""
