"""The shard process: owns the streams whose paths hash to it.

It listens on a Unix socket in the instance's run folder for the fronts'
links (open stream, consumers, socket hand-offs) and keeps its link to the
supervisor (heartbeats, stats, stores).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from typing import Any

from ..child import ChildArgs, shard_socket_path
from ..config import Config
from ..errors import HubError, NotFound
from ..ipc import messages as M
from ..ipc.channel import IpcChannel, serve_unix
from ..ipc.dispatch import Dispatch
from ..logs import level_number, log_access
from ..procstats import process_extra
from ..store.routes import RouteTable
from ..hls_files import hls_root
from ..placement import canonical_path
from .hls import HlsManager
from .metrics import ShardTally, shard_report
from .publish import PublishHost, RtspPublisher
from .read_gate import ReadGate
from .rtmp_publish import RtmpPublisher, RtmpPublishHost
from .record import RecordManager
from ..store.recordings import RecordTable, rule_from_obj
from .cluster import ShardCluster
from .pull import PullManager, PullSettings  # route pulls
from .stream import Stream
from .streams import StreamTable
from .whip import WhipHost, WhipSession

log = logging.getLogger("hub.shard")


class Shard:
    def __init__(self, args: ChildArgs) -> None:
        self.args = args
        self.streams = StreamTable(args, self._send_wake)
        self.streams.on_stream_closed.append(self._announce_end)
        self.tally = ShardTally()
        self.streams.on_stream_closed.append(self.tally.stream_ended)
        # One read gate for every TCP publisher, so they read in the same wake-up
        # (`ingest_window`, `unwatched_ingest_window`).
        self.gate = ReadGate.for_config(args.config.ingest_window, args.config.unwatched_ingest_window)
        self.publishers = PublishHost(args, self.streams, gate=self.gate)  # RTSP publishers handed over by the fronts
        self.rtmp = RtmpPublishHost(args, self.streams, gate=self.gate)  # RTMP publishers, handed over at `publish`
        self.publishers.on_closed.append(self._publisher_closed)
        self.rtmp.on_closed.append(self._publisher_closed)
        self.supervisor: IpcChannel | None = None
        self.draining = False
        self.whip = WhipHost(args, self.streams)  # WebRTC publishers, on this shard's UDP port
        self.whip.on_closed.append(self._whip_closed)
        self.hls = HlsManager(hls_root(args.config.hlspath, args.instance), float(args.config.hlsfragment))
        self.streams.on_stream_closed.append(self.hls.stream_closed)
        cfg = args.config
        self.recorders = RecordManager(cfg.recordings_path, RecordTable(rule_from_obj(r, "config") for r in cfg.record),
                                       args.index, cfg.shard_count)
        self.streams.on_stream_opened.append(self.recorders.stream_opened)
        self.streams.on_stream_closed.append(self.recorders.stream_closed)
        self.fronts: set[IpcChannel] = set()
        #: Which front each link is (its hello); a WHEP session's id names its front.
        self.front_index: dict[IpcChannel, int] = {}
        self.stop = asyncio.Event()
        # -- route pulls (hub.shard.pull) --------------------------------------
        # A copy of the supervisor's route table: the file at start, then the
        # supervisor's snapshot and every change it broadcasts.
        self.route_table = self._load_routes()
        cfg = args.config
        self.pulls = PullManager(self.streams, self._route_for, PullSettings(
            idle_timeout=float(cfg.route_idle_timeout), session_timeout=float(cfg.rtsp_session_timeout),
            read_gate=self.gate, udp_ports=lambda: self.publishers.ports))
        # a cluster's directory hooks and relays (hub.shard.cluster)
        self.cluster = ShardCluster(self.streams, self.pulls, lambda: self.supervisor) if cfg.cluster else None

    def _load_routes(self) -> RouteTable:
        cfg = self.args.config
        try:
            return RouteTable.load(str(cfg.data_path(cfg.routetable_file)))
        except Exception as exc:  # a bad file must not keep the shard down
            log.warning("route table not loaded: %s", exc)
            return RouteTable()

    def _route_for(self, path: str) -> tuple[str, bool] | None:
        """path → (upstream URL, keepalive) for the pull manager."""
        match = self.route_table.match(path)
        return None if match is None else (match[1], match[0].keepalive)
    # -- end route pulls --------------------------------------------------------

    @staticmethod
    def _send_wake(reader: Any, streams: dict[int, int]) -> None:
        reader.tell(M.WAKE({"s": streams}))

    # -- publishers: admission, access log, drain ----------------------------
    def _release_publisher(self, path: str, peer: str) -> None:
        """The supervisor granted this publisher (asked by the front before
        the hand-off) and this shard holds the grant until the session ends."""
        if self.supervisor is not None:
            host = peer.rpartition(":")[0] if peer.count(":") == 1 or peer.startswith("[") else peer
            self.supervisor.tell(M.RELEASE({"kind": "publisher", "path": path, "ip": host.strip("[]")}))

    def _publisher_closed(self, session: RtspPublisher | RtmpPublisher) -> None:
        self._release_publisher(session.path, session.peer)
        protocol = "rtmp" if isinstance(session, RtmpPublisher) else "rtsp"
        log_access("publisher", path=session.path, protocol=protocol, remote=session.peer, user=session.user,
                   duration=round(time.monotonic() - session.started, 3), bytes=session.ingest.bytes_in)

    def _whip_closed(self, session: WhipSession) -> None:
        self._release_publisher(session.path, session.client)  # granted to the front that asked
        log_access("publisher", path=session.path, protocol="whip", remote=session.client, user=session.user,
                   duration=round(time.monotonic() - session.started, 3), bytes=session.ingest.bytes_in)

    def adopt_publisher(self, args: M.HandoffArgs, fd: int, host: PublishHost | RtmpPublishHost | None = None) -> None:
        """A front's hand-off (to `host`, RTSP's by default); refused while
        draining (the front had its grant just before the drain began)."""
        path, peer = canonical_path(str(args.get("path") or "/")), str(args.get("peer") or "")
        if self.draining:
            log.info("%s: draining; closing publisher %s", path, peer)
            os.close(fd)
            self._release_publisher(path, peer)
            return
        task: asyncio.Task[Any] = (host or self.publishers).handoff(args, fd)

        def adopted(t: asyncio.Task[Any]) -> None:
            if t.cancelled() or t.exception() is not None:  # no session will release it
                self._release_publisher(path, peer)

        task.add_done_callback(adopted)

    def drain(self) -> None:
        self.draining = True
        self.whip.draining = True

    def reload(self, config: Config) -> None:
        """The reloadable keys changed: swap the Config where it is read."""
        self.args = dataclasses.replace(self.args, config=config)
        self.streams.args = self.args
        self.hls.fragment = float(config.hlsfragment)
        for seg in self.hls.segmenters.values():
            seg.fragment = float(config.hlsfragment)
        logging.getLogger().setLevel(level_number(config.log.level))

    def _announce_end(self, stream: Stream) -> None:
        for ch in stream.readers:
            if isinstance(ch, IpcChannel):  # in-process readers have no link
                ch.tell(M.STREAM_ENDED({"stream_id": stream.stream_id}))

    # -- IPC from the supervisor and the fronts: the handlers of SHARD, below ------------
    async def on_ping(self, ch: IpcChannel, a: M.NoArgs) -> str:
        return "pong"

    async def on_stats(self, ch: IpcChannel, a: M.StatsArgs) -> dict[str, Any]:
        # RTSP connections are counted by the front that accepted them
        # (total); a publisher handed over here stays active here.
        out: dict[str, Any] = {"streams": {"sources": len(self.streams), "consumers": 0},
                               "rtsp": {"total": 0, "active": len(self.publishers.sessions)},
                               "rtmp": {"total": 0, "active": len(self.rtmp.sessions)},
                               "webrtc": self.whip.stats(),
                               "record": self.recorders.counts()}
        if a.get("extra"):
            out["extra"] = process_extra(self.args.name)
        return out

    async def on_store_changed(self, ch: IpcChannel, a: M.StoreArgs) -> bool:
        if "routes" in a:
            self.route_table = RouteTable.from_wire(a["routes"])
        if "record" in a:
            self.recorders.set_rules(RecordTable.from_wire(a["record"]))
        return True

    async def on_metrics(self, ch: IpcChannel, a: M.NoArgs) -> M.ChildReport:
        return shard_report(self.tally, self.streams, self.publishers, self.pulls, self.hls,
                            rtmp_publishers=len(self.rtmp.sessions),
                            whip_publishers=len(self.whip.sessions), recorders=self.recorders)

    async def on_drain(self, ch: IpcChannel, a: M.NoArgs) -> bool:
        self.drain()
        return True

    async def on_reload(self, ch: IpcChannel, a: M.ReloadArgs) -> bool:
        self.reload(Config.from_dict(a["config"]))
        return True

    async def on_record_status(self, ch: IpcChannel, a: M.NoArgs) -> dict[str, Any]:
        return self.recorders.stats()

    async def on_open_stream(self, ch: IpcChannel, a: M.PathArgs) -> dict[str, Any]:
        path = str(a["path"])
        if self.streams.get(path) is None:
            await self.pulls.ensure(path)  # route pull; NotFound when none applies
        return self.streams.open(path, ch)

    async def on_hls_open(self, ch: IpcChannel, a: M.HlsOpenArgs) -> M.HlsFolder:
        stream = self.streams.get(str(a["path"]))
        if stream is None:
            stream = await self.pulls.ensure(str(a["path"]))  # route pull
        return await self.hls.open(stream, str(a.get("variant", "ts")), ch)

    async def on_list_streams(self, ch: IpcChannel, a: M.NoArgs) -> list[dict[str, Any]]:
        if self.cluster is not None:
            return self.cluster.list_streams(self.streams)
        return [s.info() for s in self.streams]

    async def on_stream_info(self, ch: IpcChannel, a: M.PathArgs) -> dict[str, Any]:
        stream = self.streams.get(str(a["path"]))
        if stream is None:
            raise NotFound("404 page not found")
        return stream.info()

    async def on_delete_stream(self, ch: IpcChannel, a: M.DeleteStreamArgs) -> bool:
        stream = self.streams.get(str(a["path"]))
        sid = a.get("stream_id")  # a cluster closes one stream, not a newer one of the path
        if stream is not None and (sid is None or stream.stream_id == sid):
            self.streams.close(stream)
        return True

    async def on_whip_offer(self, ch: IpcChannel, a: M.WhipOfferArgs) -> M.WhipAnswer:
        return self.whip.offer(a)

    async def on_whip_session(self, ch: IpcChannel, a: M.SessionOpArgs) -> str | None:
        return self.whip.session_op(a)

    async def on_webrtc_session(self, ch: IpcChannel, a: M.SessionOpArgs) -> str | None:
        # A WHEP session's DELETE/PATCH reached a front that does not hold
        # it: ask the front its id names (without one, the other fronts:
        # the holder acts, the rest say None).
        others = [f for f in self.fronts if f is not ch]
        if "front" in a:
            owner = next((f for f in others if self.front_index.get(f) == a["front"]), None)
            if owner is not None:
                others = [owner]
            elif all(f in self.front_index for f in others):
                others = []  # no such front among those linked: nobody holds it
        replies = await asyncio.gather(*(f.call(M.WEBRTC_SESSION(a), timeout=2.0) for f in others),
                                       return_exceptions=True)
        return next((r for r in replies if isinstance(r, str)), None)

    async def on_describe(self, ch: IpcChannel, a: M.StreamIdArgs) -> dict[str, Any]:
        stream = self.streams.by_id(int(a["stream_id"]))
        if stream is None:
            raise NotFound("stream ended")
        return stream.describe()

    def on_release_stream(self, ch: IpcChannel, a: M.StreamIdArgs) -> None:
        self.streams.release(int(a["stream_id"]), ch)

    def on_front_hello(self, ch: IpcChannel, a: M.FrontArgs) -> None:
        if ch in self.fronts:
            self.front_index[ch] = int(a["index"])

    def on_request_keyframe(self, ch: IpcChannel, a: M.StreamIdArgs) -> None:
        """A WebRTC player's PLI, for a source that can ask (WHIP)."""
        stream = self.streams.by_id(int(a["stream_id"]))
        ask = getattr(stream.source, "request_keyframe", None) if stream is not None else None
        if ask is not None:
            ask()

    def on_hls_touch(self, ch: IpcChannel, a: M.HlsPathArgs) -> None:
        self.hls.touch(str(a["p"]), ch)

    def on_handoff_rtsp(self, ch: IpcChannel, a: M.HandoffArgs, fd: int) -> None:
        self.adopt_publisher(a, fd)

    def on_handoff_rtmp(self, ch: IpcChannel, a: M.HandoffArgs, fd: int) -> None:
        self.adopt_publisher(a, fd, self.rtmp)


#: The shard's one dispatch table: what the supervisor and the fronts ask and tell it.
SHARD: Dispatch[Shard] = Dispatch("shard")
SHARD.request(M.PING, Shard.on_ping)
SHARD.request(M.STATS, Shard.on_stats)
SHARD.request(M.STORE_CHANGED, Shard.on_store_changed)
SHARD.request(M.METRICS, Shard.on_metrics)
SHARD.request(M.DRAIN, Shard.on_drain)
SHARD.request(M.RELOAD, Shard.on_reload)
SHARD.request(M.RECORD_STATUS, Shard.on_record_status)
SHARD.request(M.OPEN_STREAM, Shard.on_open_stream)
SHARD.request(M.HLS_OPEN, Shard.on_hls_open)
SHARD.request(M.LIST_STREAMS, Shard.on_list_streams)
SHARD.request(M.STREAM_INFO, Shard.on_stream_info)
SHARD.request(M.DELETE_STREAM, Shard.on_delete_stream)
SHARD.request(M.WHIP_OFFER, Shard.on_whip_offer)
SHARD.request(M.WHIP_SESSION, Shard.on_whip_session)
SHARD.request(M.WEBRTC_SESSION, Shard.on_webrtc_session)
SHARD.request(M.DESCRIBE, Shard.on_describe)
SHARD.notice(M.RELEASE_STREAM, Shard.on_release_stream)
SHARD.notice(M.REQUEST_KEYFRAME, Shard.on_request_keyframe)
SHARD.notice(M.HLS_TOUCH, Shard.on_hls_touch)
SHARD.notice(M.FRONT_HELLO, Shard.on_front_hello)
SHARD.handoff(M.HANDOFF_RTSP, Shard.on_handoff_rtsp)
SHARD.handoff(M.HANDOFF_RTMP, Shard.on_handoff_rtmp)


class _Link:
    def __init__(self, shard: Shard, is_supervisor: bool) -> None:
        self.shard = shard
        self.is_supervisor = is_supervisor

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        return await SHARD.on_request(self.shard, ch, method, args)

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        SHARD.on_notice(self.shard, ch, method, args)

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        SHARD.on_fd(self.shard, ch, method, args, fd)

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        if self.is_supervisor:
            log.warning("supervisor link closed; exiting")
            self.shard.stop.set()
        else:
            self.shard.fronts.discard(ch)
            self.shard.front_index.pop(ch, None)
            self.shard.streams.drop_reader(ch)
            self.shard.hls.drop_reader(ch)


async def run_shard(args: ChildArgs) -> None:
    shard = Shard(args)
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shard.stop.set)
    sup = IpcChannel.from_fd(args.ipc_fd, _Link(shard, True))
    shard.supervisor = sup
    path = shard_socket_path(args.run_dir, args.index)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

    def on_front(ch: IpcChannel) -> None:
        shard.fronts.add(ch)

    server = await serve_unix(path, lambda: _Link(shard, False), on_connect=on_front)
    shard.whip.start()
    try:
        snap = await sup.call(M.STORE_SNAPSHOT({}), timeout=10.0)
        shard.route_table = RouteTable.from_wire(snap["routes"])
        if "record" in snap:
            shard.recorders.set_rules(RecordTable.from_wire(snap["record"]))
    except HubError as e:
        log.warning("no route table from the supervisor yet: %s", e)
    log.info("serving fronts on %s", path)
    sup.tell(M.SERVING({}))
    try:
        await shard.stop.wait()
    finally:
        server.close()
        await shard.pulls.aclose()  # route pulls: TEARDOWN upstream
        shard.publishers.close()
        shard.rtmp.close()
        if shard.gate is not None:
            shard.gate.close()
        shard.whip.close()
        shard.hls.close()
        shard.streams.close_all()
        await shard.recorders.aclose()  # recordings: last parts written, files synced
        for ch in list(shard.fronts):
            ch.close()
        sup.close()
