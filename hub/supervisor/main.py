"""The supervisor process: starts the tree, answers its children, stops it.

It binds nothing it serves: every front binds the listen address itself with
SO_REUSEPORT. The supervisor only checks first that nobody else holds the
address, so two instances never silently share a port.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import shutil
import signal
import socket
import tempfile
from typing import TYPE_CHECKING, Callable

from ..config import NO_IPV6_ERRNOS, Config
from ..ipc import messages as M
from ..hls_files import HLS_DIR_PREFIX, hls_root
from ..logs import set_process_title, setup_logging
from ..ring import cleanup_stale
from .admission import Admission
from .cluster import LocalTree
from .lifecycle import Lifecycle
from .links import ChildLink
from .metrics import TreeMetrics
from .stats import RuntimeStats
from .stores import Stores
from .tree import Child, ProcessTree, pid_alive

if TYPE_CHECKING:
    from ..cluster.node import ClusterNode

log = logging.getLogger("hub.supervisor")

RUN_DIR_PREFIX = "ipchub-"
SHM_PREFIX = "hub-"


def instance_name() -> str:
    return str(os.getpid())


def remove_stale(shm_dir: str = "/dev/shm", tmp_dir: str | None = None,
                 hls_parent: str | None = None) -> list[str]:
    """Remove segments and run folders of earlier instances that are dead.

    Names carry the supervisor's pid (`hub-<pid>-...`, `ipchub-<pid>`), so a
    live instance's files are never touched.
    """
    removed: list[str] = []
    dead: set[str] = set()
    try:
        names = os.listdir(shm_dir)
    except OSError:
        names = []
    for name in names:
        if not name.startswith(SHM_PREFIX):
            continue
        pid_text = name[len(SHM_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            dead.add(pid_text)
    for pid_text in dead:
        removed += cleanup_stale(f"{SHM_PREFIX}{pid_text}-")
    tmp_dir = tmp_dir or tempfile.gettempdir()
    for folder, prefix in ((tmp_dir, RUN_DIR_PREFIX), (hls_parent or shm_dir, HLS_DIR_PREFIX)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix):
                pid_text = name[len(prefix):]
                if pid_text.isdigit() and not pid_alive(int(pid_text)):
                    shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
                    removed.append(name)
    return removed


def check_address_free(hosts: tuple[str, ...], port: int) -> None:
    """Fail early (and clearly) when the listen address is taken (for
    `:PORT`: IPv4's and, where the machine has IPv6, IPv6's)."""
    if len(hosts) > 1:
        for host in hosts:
            _check_free(host, port, f":{port}", v6only=":" in host)
        return
    _check_free(hosts[0], port, f"{hosts[0]}:{port}")


def _check_free(host: str, port: int, shown: str, v6only: bool = False) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError:  # no IPv6 here: the fronts listen on IPv4 alone
        return
    # SO_REUSEADDR: connections of a just-stopped instance in TIME_WAIT do not
    # block the port, a live listener (without our SO_REUSEPORT) still does.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if v6only:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise SystemExit(f"ipchub: {shown} is already in use") from None
        if v6only and e.errno in NO_IPV6_ERRNOS:
            return
        raise SystemExit(f"ipchub: cannot bind {shown}: {e.strerror}") from None
    finally:
        s.close()


class Supervisor:
    def __init__(self, config: Config, load_config: Callable[[], Config] | None = None) -> None:
        self.config = config
        self.instance = instance_name()
        self.run_dir = os.path.join(tempfile.gettempdir(), f"{RUN_DIR_PREFIX}{self.instance}")
        self.tree = ProcessTree(config, self.instance, self.run_dir, self._handler_for)
        self.stats = RuntimeStats(self.tree)
        self.metrics = TreeMetrics(self.tree, config.metrics.max_paths)
        self.admission = Admission(lambda: self.config.limits,
                                   on_refusal=lambda limit: self.metrics.count("limit_refusals", limit))
        self.tree.on_exit.append(lambda child: self.admission.forget(child.name))
        self.cluster: ClusterNode | None = None
        if config.cluster:
            from ..cluster.node import ClusterNode  # the Redis client is imported only for a cluster

            self.cluster = ClusterNode(config, LocalTree(self.tree, self.admission))
            self.tree.on_exit.append(self._shard_gone)
        self.stores = Stores(config, self._broadcast_store, None if self.cluster is None else self.cluster.stores)
        self.lifecycle = Lifecycle(self, load_config)
        self._stop = asyncio.Event()

    def _shard_gone(self, child: Child) -> None:
        if child.kind == "shard" and self.cluster is not None:
            self.cluster.shard_gone(child.index)

    # -- IPC from children ----------------------------------------------
    def _handler_for(self, child: Child) -> ChildLink:
        return ChildLink(self, child)  # its handlers: hub.supervisor.links.SUPERVISOR

    async def _broadcast_store(self, args: M.StoreArgs) -> None:
        await self.tree.request_all(M.STORE_CHANGED(args), timeout=2.0)

    def stop(self) -> None:
        """End at once: stop the children and exit (SIGINT, a second SIGTERM, the drain's end)."""
        self._stop.set()

    # -- life cycle -------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGTERM, self.lifecycle.on_sigterm)
        loop.add_signal_handler(signal.SIGHUP, self.lifecycle.on_sighup)
        os.makedirs(self.config.data, exist_ok=True)
        os.makedirs(self.run_dir, mode=0o700, exist_ok=True)
        log.info("instance %s: %d shards, %d fronts, listening on %s",
                 self.instance, self.config.shard_count, self.config.front_count, self.config.listen)
        try:
            if self.cluster is not None and not await self._join_cluster():
                return 0
            await self.stores.open()
            await self.tree.start()
            if self.cluster is not None:
                self.cluster.serve()
            await self._stop.wait()
            log.info("stopping")
        finally:
            await self.lifecycle.aclose()
            await self.stores.aclose()
            if self.cluster is not None:  # our directory entries go first: relays elsewhere stop at once
                await self.cluster.aclose()
            await self.tree.stop()
            removed = cleanup_stale(f"{SHM_PREFIX}{self.instance}-")
            if removed:
                log.info("unlinked %d segments left by children", len(removed))
            shutil.rmtree(self.run_dir, ignore_errors=True)
            shutil.rmtree(hls_root(self.config.hlspath, self.instance), ignore_errors=True)
        return 0

    async def _join_cluster(self) -> bool:
        """Wait for Redis (the stores are there); False if stopped meanwhile."""
        assert self.cluster is not None
        joining = asyncio.ensure_future(self.cluster.connect())
        stopping = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait([joining, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not joining.done():
            joining.cancel()
            await asyncio.gather(joining, return_exceptions=True)
            return False
        joining.result()
        return True


def raise_nofile_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard one; return the soft limit in force.

    Every player is a socket, so the usual soft 1024 would cap a front at
    about a thousand players. Children inherit the raised limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if target == resource.RLIM_INFINITY:  # Linux refuses more than fs.nr_open
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = soft
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as e:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, e)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run(config: Config, load_config: Callable[[], Config] | None = None) -> int:
    """Run the tree; `load_config` reads the configuration again (SIGHUP)."""
    set_process_title("supervisor")
    setup_logging("supervisor", config.log)
    nofile = raise_nofile_limit()
    log.info("open-file limit", extra={"nofile": nofile})
    if config.memory_merge:
        from .. import ksm

        if ksm.is_marked():  # by `python -m hub` before the zygote's fork
            log.info("%s", ksm.describe())
        else:
            log.warning("memory_merge: this kernel cannot mark memory mergeable (Linux 6.4+ with KSM)")
    removed = remove_stale(hls_parent=config.hlspath or None)
    if removed:
        log.info("removed %d leftovers of dead instances", len(removed))
    try:
        check_address_free(config.listen_hosts, config.port)
        if config.rtmp_port:
            check_address_free(config.listen_hosts, config.rtmp_port)
    except SystemExit as e:  # logged, so a JSON log stays all JSON
        log.critical("%s", e.code)
        return 1
    import uvloop

    return uvloop.run(Supervisor(config, load_config).run())
