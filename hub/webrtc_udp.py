"""The asyncio side of one WebRTC UDP port, for a front (WHEP players) and
a shard (WHIP publishers) alike: the socket, its reads, the timers of the
sans-IO :class:`~hub.media.webrtc.mux.WebRtcMux`, and the sends.

- Reads come from the loop's reader callback (`add_reader`), every datagram
  already queued up to :data:`DRAIN_LIMIT` per wake-up (as
  `hub.shard.udp_in` does), into the mux; what the mux answers (STUN, DTLS,
  NACKed packets) goes straight back out; its events are handed to the
  owner in one list per wake-up.
- One timer, set at the mux's earliest deadline (consent expiry, a DTLS
  flight to resend), moved up when the peer a datagram went to needs it
  sooner: no fixed tick, no scan of every peer per datagram.
- Sends never queue: a datagram the kernel does not take now (EAGAIN) is
  dropped and counted, like any UDP loss (the player's NACK or PLI, or the
  caller's skip to a keyframe, recovers). A peer's packets of one turn go
  out with UDP GSO (`UDP_SEGMENT`: one `sendmsg` per run of equal-size
  packets, the kernel cuts them) where the kernel has it, else one
  `sendto` each.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from typing import Callable

from .config import NO_IPV6_ERRNOS, Config
from .errors import ServiceUnavailable
from .media.webrtc.answer import IceCandidate
from .media.webrtc.mux import WebRtcMux
from .media.webrtc.peer import Addr, Datagram, PeerEvent, WebRtcPeer

log = logging.getLogger("hub.webrtc_udp")

__all__ = ["WebRtcSocket", "bind_for_listen", "bind_udp", "candidates_for", "DRAIN_LIMIT", "MAX_DATAGRAM", "SOCKET_BUFFER"]

#: Datagrams read per wake-up, so a flood cannot starve the loop.
DRAIN_LIMIT = 64
#: Bytes read per datagram (STUN, DTLS and SRTP of our peers are far smaller).
MAX_DATAGRAM = 2048
#: Kernel send and receive buffers asked for (the kernel may cap them).
SOCKET_BUFFER = 4 << 20
#: Linux UDP GSO (include/uapi/linux/udp.h): segment size option, at most
#: 64 segments and 64 KiB per call.
SOL_UDP = 17
UDP_SEGMENT = 103
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65000
_GSO_SIZE = struct.Struct("=H")


def bind_udp(host: str, port: int, dual: bool = False) -> socket.socket:
    """A non-blocking UDP socket on `host:port` (port 0: any free one);
    `dual`: an IPv6 one that IPv4 peers reach too (as `::ffff:a.b.c.d`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
            except OSError:
                pass
        if dual:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def bind_for_listen(hosts: tuple[str, ...], port: int) -> socket.socket:
    """The WebRTC port for `listen_hosts` (`Config.listen_hosts`): the one
    host's, or for every address (`:1554`) one dual-stack IPv6 socket, so a
    player that reached us over IPv6 gets a candidate it can use as well as
    one over IPv4; IPv4's alone where the kernel has no IPv6."""
    if len(hosts) == 1:
        return bind_udp(hosts[0], port)
    try:
        return bind_udp("::", port, dual=True)
    except OSError as e:
        if e.errno not in NO_IPV6_ERRNOS:
            raise
        return bind_udp("0.0.0.0", port)


def _v4_of(addr: tuple[str, int] | tuple[str, int, int, int]) -> Addr:
    """A dual-stack socket's IPv4 peer as the engine knows it: its own
    address, not `::ffff:a.b.c.d` (the STUN answers, the per-client keys)."""
    return (addr[0][7:], addr[1])


class WebRtcSocket:
    """One bound UDP socket serving a mux; `on_events(events)` gets the
    mux's events after each wake-up and timer run."""

    def __init__(self, sock: socket.socket, mux: WebRtcMux, on_events: Callable[[list[PeerEvent]], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sock = sock
        self.mux = mux
        self.on_events = on_events
        self.clock = clock
        self.loop = asyncio.get_running_loop()
        self.port = int(sock.getsockname()[1])
        self.family = sock.family
        #: An IPv6 socket that IPv4 peers reach too (`bind_for_listen`).
        self.dual = sock.family == socket.AF_INET6 and not sock.getsockopt(socket.IPPROTO_IPV6,
                                                                            socket.IPV6_V6ONLY)
        self.gso = hasattr(sock, "sendmsg")
        self.sent = 0
        self.dropped = 0  # datagrams the kernel did not take
        self.received = 0
        self._buf = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buf)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self.closed = False
        self.loop.add_reader(sock.fileno(), self._readable)

    # -- reading ----------------------------------------------------------------
    def _readable(self) -> None:
        recv = self.sock.recvfrom_into
        buf, view, mux = self._buf, self._view, self.mux
        now = self.clock()
        for _ in range(DRAIN_LIMIT):
            try:
                n, addr = recv(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # an ICMP error reported on the socket
                break
            self.received += 1
            if self.dual and addr[0].startswith("::ffff:"):
                addr = _v4_of(addr)
            out = mux.receive(bytes(view[:n]), addr, now)
            if out:
                self.send(out)
            peer = mux.last_peer
            if peer is not None:
                due = peer.deadline(now)
                if due < self._timer_at:
                    self._schedule(due)
            if self.closed:
                return
        self._deliver()

    def _deliver(self) -> None:
        events = self.mux.pop_events()
        if events:
            self.on_events(events)

    # -- timers -------------------------------------------------------------------
    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_later(max(0.0, when - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        if self.closed:
            return
        now = self.clock()
        self.send(self.mux.handle_timer(now))
        self._deliver()
        self.reschedule()

    def reschedule(self) -> None:
        """Set the timer at the mux's earliest deadline."""
        if self.closed:
            return
        due = self.mux.deadline(self.clock())
        if due is not None and due < self._timer_at:
            self._schedule(due)

    def watch(self, peer: WebRtcPeer) -> None:
        """A peer was added: its deadline (no ICE check in time) is timed too."""
        due = peer.deadline(self.clock())
        if not self.closed and due < self._timer_at:
            self._schedule(due)

    # -- sending ----------------------------------------------------------------------
    def _to(self, addr: Addr) -> Addr:
        """Where the socket sends to `addr` (an IPv4 peer of a dual-stack
        socket: its mapped address)."""
        return ("::ffff:" + addr[0], addr[1]) if self.dual and ":" not in addr[0] else addr

    def send(self, datagrams: list[Datagram]) -> None:
        sendto = self.sock.sendto
        for data, addr in datagrams:
            try:
                sendto(data, self._to(addr))
                self.sent += 1
            except OSError:
                self.dropped += 1

    def send_packets(self, packets: list[bytes], addr: Addr) -> bool:
        """One peer's packets in order; False if any was dropped. Runs of
        equal-size packets (each run may end with one smaller packet) go
        out in one GSO `sendmsg` each."""
        if not packets:
            return True
        addr = self._to(addr)
        if not self.gso or len(packets) == 1:
            return self._send_each(packets, addr)
        ok = True
        i, n = 0, len(packets)
        while i < n:
            size = len(packets[i])
            limit = min(GSO_MAX_SEGMENTS, GSO_MAX_BYTES // size)
            j = i + 1
            while j < n and j - i < limit:
                s = len(packets[j])
                if s > size:
                    break
                j += 1
                if s < size:
                    break
            run = packets[i:j]
            if len(run) == 1:
                ok = self._send_each(run, addr) and ok
            else:
                ok = self._send_run(run, size, addr) and ok
            i = j
        return ok

    def _send_each(self, packets: list[bytes], addr: Addr) -> bool:
        sendto = self.sock.sendto
        for k, p in enumerate(packets):
            try:
                sendto(p, addr)
            except OSError:
                self.dropped += len(packets) - k
                self.sent += k
                return False
        self.sent += len(packets)
        return True

    def _send_run(self, run: list[bytes], size: int, addr: Addr) -> bool:
        try:
            self.sock.sendmsg(run, [(SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(size))], 0, addr)
        except BlockingIOError:
            self.dropped += len(run)
            return False
        except OSError as e:
            if e.errno in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP):
                log.info("UDP GSO not available here (%s): one sendto per packet", e.strerror)
                self.gso = False
                return self._send_each(run, addr)
            self.dropped += len(run)
            return False
        self.sent += len(run)
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.loop.remove_reader(self.sock.fileno())
        except (ValueError, RuntimeError):
            pass
        self.sock.close()


def candidates_for(config: Config, port: WebRtcSocket, request_host: str) -> tuple[IceCandidate, ...]:
    """The host candidates of an answer, on `port`: the configured public
    addresses of the socket's family, else the address the HTTP request
    came in on (what the client reached us at)."""
    v6 = port.family == socket.AF_INET6
    hosts = [a for a in config.webrtc.public_addresses if port.dual or (":" in a) == v6]
    if not hosts and request_host:
        host = request_host.removeprefix("::ffff:") if port.dual or not v6 else request_host
        if port.dual or (":" in host) == v6:
            hosts = [host]
    if not hosts:
        raise ServiceUnavailable("WebRTC: no address of the UDP port's family to announce "
                                 "(set webrtc.public_addresses)")
    return tuple(IceCandidate(h, port.port) for h in hosts)
