"""A shard's answer to the supervisor's `metrics` request.

Plain numbers in `hub.supervisor.tally.ChildReport`'s shape, added up from
what the shard's objects count anyway: each stream its bytes in (`size`)
and its tracks' lost and dropped RTP packets, the publishers and pulls
their sessions. What a stream counted is kept
when it ends (`ShardTally.stream_ended`) until one report has carried it.
"""

from __future__ import annotations

from collections import Counter

from ..ipc.latency import REQUEST_LATENCY
from ..ipc.messages import ChildReport
from .hls import HlsManager
from .publish import PublishHost
from .pull import PullManager
from .record import RecordManager
from .stream import Stream
from .streams import StreamTable


class ShardTally:
    """What ended streams and pulls counted."""

    def __init__(self) -> None:
        self.ended_in: Counter[str] = Counter()  # bytes in by path
        self.lost = 0
        self.dropped = 0

    def stream_ended(self, stream: Stream) -> None:
        self.ended_in[stream.path] += stream.size
        lost, dropped = stream.losses()
        self.lost += lost
        self.dropped += dropped


def shard_report(tally: ShardTally, streams: StreamTable, publishers: PublishHost, pulls: PullManager,
                 hls: HlsManager, rtmp_publishers: int = 0, whip_publishers: int = 0,
                 recorders: RecordManager | None = None) -> ChildReport:
    bytes_in: Counter[str] = Counter(tally.ended_in)
    lost, dropped = tally.lost, tally.dropped
    for stream in streams:
        bytes_in[stream.path] += stream.size
        a, b = stream.losses()
        lost += a
        dropped += b
    # Reported once, an ended stream's bytes need not be kept: the supervisor
    # has them and counts a path seen again from zero.
    live = {s.path for s in streams}
    for path in [p for p in tally.ended_in if p not in live]:
        del tally.ended_in[path]
    states = Counter(p.state for p in pulls.pulls.values())
    reconnects = sum(max(0, p.connects - 1) for p in pulls.pulls.values())
    rec = recorders.counts() if recorders is not None else {"active": 0, "errors": 0}
    return {
        "c": {"pull_reconnects": reconnects, "rtp_lost": lost, "rtp_dropped": dropped,
              "recording_errors": rec["errors"]},
        "g": {"streams_live": len(streams), "publishers": {"rtsp": len(publishers.sessions), "rtmp": rtmp_publishers,
                                                              "whip": whip_publishers},
              "pulls": dict(states), "hls_segmenters": len(hls.segmenters), "recordings": rec["active"]},
        "p": {path: [n, 0] for path, n in bytes_in.items()},
        "h": REQUEST_LATENCY.snapshot(),
    }
