"""The front process: start-up and the uvicorn server on the shared port.

uvicorn (uvloop + httptools) runs on a listening socket this process binds
itself with SO_REUSEPORT, so the kernel spreads connections over the fronts.
RTMP's own port (`rtmp_port`) is bound the same way and served by the same
protocol the shared port's sniffer switches RTMP connections to.
The front keeps an IPC link to the supervisor (heartbeats, stats, stores)
and one to each shard (streams, wake-ups, socket hand-offs).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from email.utils import formatdate
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from ..child import ChildArgs
from ..config import NO_IPV6_ERRNOS
from ..ipc import messages as M
from ..ipc.channel import IpcChannel
from .context import FrontContext
from .links import SupervisorLink, keep_shard_link
from .play.consumer import set_cid_suffix
from .rest.app import build_app
from .rtmp.connection import RtmpFrontProtocol
from .sniff import SniffProtocol

log = logging.getLogger("hub.api.process")


def listening_sockets(hosts: tuple[str, ...], port: int) -> list[socket.socket]:
    """The sockets a front listens on: one per host of `listen_hosts` —
    for `:1554`, IPv4's 0.0.0.0 and IPv6's `::` (v6 only, so IPv4 peers keep
    their own addresses, not `::ffff:a.b.c.d`); IPv6's is left out where
    the kernel has none."""
    socks: list[socket.socket] = []
    try:
        for host in hosts:
            wildcard_v6 = host == "::" and len(hosts) > 1
            try:
                socks.append(_listening_socket(host, port, v6only=wildcard_v6))
            except OSError as e:
                if not (wildcard_v6 and e.errno in NO_IPV6_ERRNOS):
                    raise
                log.info("no IPv6 on this machine: listening on IPv4 only (%s)", e.strerror)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def _listening_socket(host: str, port: int, v6only: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if v6only:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def uvicorn_config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(app, http=SniffProtocol, ws="none", lifespan="off", loop="none",
                          log_config=None, access_log=False, proxy_headers=False,
                          server_header=False, date_header=True, timeout_graceful_shutdown=1)


async def selftest(config: uvicorn.Config) -> None:
    """Serve one real request through the sniffing hook on a socketpair.

    uvicorn's `http=` hook and HttpToolsProtocol's constructor are not a
    public API; if an upgrade breaks them, the front must fail at start,
    loudly, not serve a port that answers nothing.
    """
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    try:
        state = ServerState()
        await loop.connect_accepted_socket(
            lambda: SniffProtocol(config=config, server_state=state, app_state={}, _loop=loop), a)
        b.setblocking(False)
        await loop.sock_sendall(b, b"GET /api/crossdomain.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = bytearray()
        async with asyncio.timeout(5):
            while chunk := await loop.sock_recv(b, 65536):
                data += chunk
        if not data.startswith(b"HTTP/1.1 200") or b"cross-domain-policy" not in data:
            raise RuntimeError(f"uvicorn hook self-test failed: {bytes(data[:200])!r}")
    finally:
        a.close()
        b.close()


class LazyDateState(ServerState):
    """uvicorn's shared state whose Date header is made when a response asks
    for it (at most once a second), not by a timer: uvicorn's own main loop
    wakes every 0.1 s to refresh it and look for an exit, which is most of
    an idle front's wake-ups."""

    def __init__(self) -> None:
        self._extra: list[tuple[bytes, bytes]] = []
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = []
        super().__init__()

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._headers = [(b"date", formatdate(now, usegmt=True).encode()), *self._extra]
        return self._headers

    @default_headers.setter
    def default_headers(self, value: list[tuple[bytes, bytes]]) -> None:
        # uvicorn sets the Date header and the configured ones; keep the latter.
        self._extra = [(k, v) for k, v in value if k != b"date"]
        self._second = -1


class FrontServer(uvicorn.Server):
    """uvicorn's server, telling the front when it listens, letting a drain
    close the listening socket, and closing the players before it waits for
    its connections to end."""

    def __init__(self, config: uvicorn.Config, front: FrontContext,
                 rtmp_socks: list[socket.socket] | None = None) -> None:
        self._exit = asyncio.Event()
        self._should_exit = False
        super().__init__(config)
        self.server_state = LazyDateState()
        self.front = front
        self.rtmp_socks = rtmp_socks or []
        self.rtmp: list[asyncio.Server] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        front = self.front
        for sock in self.rtmp_socks:  # RTMP's own port: the protocol the sniffer switches to
            self.rtmp.append(await asyncio.get_running_loop().create_server(
                lambda: RtmpFrontProtocol(front), sock=sock))
        front.stop_listening = self._stop_listening
        if front.draining:  # the drain came while we were starting
            self._stop_listening()
            return
        front.listening = True
        if front.supervisor is not None:
            front.supervisor.tell(M.SERVING({}))

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        # Set by uvicorn's signal handlers, the supervisor link's loss, the drain.
        self._should_exit = value
        if value:
            self._exit.set()

    async def main_loop(self) -> None:
        """Sleep until asked to exit (uvicorn's own polls every 0.1 s)."""
        while not await self.on_tick(0):  # the exit checks (and the Date, made lazily here)
            await self._exit.wait()
            self._exit.clear()

    def _stop_listening(self) -> None:
        # Closes the listening socket itself: the kernel refuses new
        # connections (or gives them to a front still listening).
        for server in self.servers:
            server.close()
        self.close_rtmp()
        self.front.listening = False

    def close_rtmp(self) -> None:
        for server in self.rtmp:
            server.close()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for view in list(self.front.views.by_id.values()):
            view.close()
        await super().shutdown(sockets)


async def run_front(args: ChildArgs) -> None:
    stop = asyncio.Event()
    set_cid_suffix(args.index)
    front = FrontContext(args)
    front.supervisor = IpcChannel.from_fd(args.ipc_fd, SupervisorLink(front, stop))
    links = [asyncio.create_task(keep_shard_link(front, i, stop), name=f"shard-link-{i}")
             for i in range(len(front.shards))]

    front.apply_store(await front.supervisor_request(M.STORE_SNAPSHOT({}), timeout=10.0))
    app = build_app(front)
    config = uvicorn_config(app)
    config.load()
    await selftest(config)
    socks = listening_sockets(args.config.listen_hosts, args.config.port)
    front.webrtc.start()  # this front's WebRTC UDP port
    rtmp_socks = listening_sockets(args.config.listen_hosts, args.config.rtmp_port) if args.config.rtmp_port else []
    server = FrontServer(config, front, rtmp_socks)

    async def stop_on_link_loss() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(stop_on_link_loss())
    try:
        await server.serve(sockets=socks)
    finally:
        stop.set()
        server.close_rtmp()
        for t in (*links, watcher):
            t.cancel()
        await asyncio.gather(*links, watcher, return_exceptions=True)
        front.webrtc.close()
        front.views.close()
        front.hls_viewers.close()
        front.shards.close()
        if front.supervisor is not None:
            front.supervisor.close()
        for sock in (*socks, *rtmp_socks):
            sock.close()
