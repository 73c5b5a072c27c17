"""A shard's side of a cluster (`--cluster`): the directory's hooks and relays.

- Every stream that goes live here or ends is told to the supervisor
  (`cluster_stream` notices), which keeps the node's entries in the stream
  directory: a publisher's stream (`publish`), a route pull's (`pull`); a
  relay's (`relay`) is counted but never listed — its owner is elsewhere.
- A pull asks the supervisor where its path lives before each connect
  (`cluster_locate`): another node that holds it gives a relay URL; else
  the route table's upstream, if any.
- A pull never replaces a live stream (`StreamTable.yields`): when a
  publisher took the path here, the pull ends instead of kicking it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from ..ipc import messages as M
from ..ipc.channel import IpcChannel
from .pull import PullManager, PullSource
from .stream import Stream
from .streams import StreamTable

log = logging.getLogger("hub.shard.cluster")

#: A shard's question to its supervisor (which asks Redis once).
LOCATE_TIMEOUT = 2.0


class ShardCluster:
    def __init__(self, streams: StreamTable, pulls: PullManager,
                 supervisor: Callable[[], IpcChannel | None]) -> None:
        self.pulls = pulls
        self._supervisor = supervisor
        streams.on_stream_opened.append(self._opened)
        streams.on_stream_closed.append(self._closed)
        streams.yields = self._is_pull
        pulls.relays = self.locate

    def origin_of(self, stream: Stream) -> str:
        """The node a relayed stream comes from; "" for a stream of this node's own."""
        pull = self.pulls.pulls.get(stream.path)
        if pull is not None and pull.session is not None and pull.session is stream.source:
            return pull.origin
        return ""

    def _is_pull(self, source: Any) -> bool:
        return any(p.session is source for p in self.pulls.pulls.values())

    def _opened(self, stream: Stream) -> None:
        kind = "relay" if self.origin_of(stream) else "pull" if self._is_pull(stream.source) else "publish"
        self._tell({"up": True, "path": stream.path, "sid": stream.stream_id, "kind": kind,
                    "codecs": [t.codec for t in stream.tracks], "start_on": stream.start_on, "t": time.time()})

    def _closed(self, stream: Stream) -> None:
        self._tell({"up": False, "path": stream.path, "sid": stream.stream_id})

    def _tell(self, args: M.ClusterStreamArgs) -> None:
        sup = self._supervisor()
        if sup is not None:
            sup.tell(M.CLUSTER_STREAM(args))

    async def locate(self, path: str, routed: bool) -> PullSource | None:
        """The node that holds `path` (a relay from it), or None: pull it here
        from its route (if `routed`; this node then holds the path)."""
        sup = self._supervisor()
        if sup is None:
            return None
        reply = await sup.call(M.CLUSTER_LOCATE({"path": path, "routed": routed}), timeout=LOCATE_TIMEOUT)
        if isinstance(reply, dict) and reply.get("relay"):
            log.info("%s: relaying from node %s", path, reply.get("node"))
            return PullSource(str(reply["relay"]), False, str(reply.get("node") or "?"))
        return None

    def list_streams(self, streams: StreamTable) -> list[dict[str, Any]]:
        """The shard's streams for the API, a relay marked with its origin
        (the cluster-wide listing shows it under its owner, not twice)."""
        out = []
        for s in streams:
            info = s.info()
            origin = self.origin_of(s)
            if origin:
                info["relay"] = origin
            out.append(info)
        return out
