"""A front's answer to the supervisor's `metrics` request.

Plain numbers in `hub.supervisor.tally.ChildReport`'s shape, added up from
what the front's objects count anyway: each player (Consumer) its bytes,
skips and abort, each view its ring reader's laps, the views what players
that left counted (`StreamViews.retire`). Nothing is counted per packet
for this; the sums run once per scrape, over the players of this front.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..ipc.latency import REQUEST_LATENCY
from ..ipc.messages import LABEL_SEP, ChildReport

if TYPE_CHECKING:
    from .context import FrontContext



def front_report(front: FrontContext) -> ChildReport:
    views = front.views
    hls = front.hls_viewers
    players: Counter[str] = Counter()
    out: Counter[str] = Counter(views.ended_out)
    skips, aborts, laps = views.skips, views.aborts, views.laps
    for view in list(views.by_id.values()):
        laps += view.reader.lapped
        for c in view.consumers():
            players[c.protocol] += 1
            out[view.desc.path] += c.outbytes
            skips += c.skips
    for v in hls.active():
        players["hls"] += 1
        out[v.path] += v.outbytes
    out.update(hls.ended_out)
    sessions = Counter(views.ended) + players
    sessions["hls"] = hls.sessions
    # Paths of players that left, once reported, need not be kept: the
    # supervisor has their totals and counts a path seen again from zero.
    live = set(views.by_path) | {v.path for v in hls.active()}
    for table in (views.ended_out, hls.ended_out):
        for path in [p for p in table if p not in live]:
            del table[path]
    counters = front.counters
    return {
        "c": {"player_sessions": dict(sessions), "player_skips": skips, "player_aborts": aborts,
              "ring_laps": laps, "hls_evicted": hls.evicted, "login_failures": counters.login_failures,
              "api_requests": {f"{route}{LABEL_SEP}{status}": n
                               for (route, status), n in counters.api_requests.items()}},
        "g": {"players": dict(players)},
        "p": {path: [0, n] for path, n in out.items()},
        "h": REQUEST_LATENCY.snapshot(),
    }
