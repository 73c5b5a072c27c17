"""A real Prometheus scrapes a running tree: after an ffmpeg push and an
HTTP-FLV and an RTSP player, its series match what was pushed and played,
and no counter goes back when a front is SIGKILLed and replaced."""

from __future__ import annotations

import signal
import threading
import time
from typing import Callable

import pytest

from hub.supervisor.metrics import HISTOGRAMS, METRICS
from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.ops.clients import CountingProxy, FlvPlayer, Prometheus, RtspPlayer
from tests.ops.conftest import child_named, ready, stream_live, wait_until

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-metrics-token"
PATH = "/live/metrics"
PLAY_SECONDS = 4.0


def within(server: float, client: float, rel: float, slack: float) -> bool:
    return abs(server - client) <= rel * client + slack


def test_prometheus_sees_what_was_pushed_and_played(hub_factory: Callable[..., HubServer],
                                                     prometheus: Callable[..., Prometheus],
                                                     push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "2", "--fronts", "2", env={"HUB_METRICS_TOKEN": TOKEN})
    prom = prometheus(srv.port, TOKEN)
    started = time.time()
    proxy = CountingProxy(srv.port)  # what ffmpeg pushes, counted outside the server
    pusher = push(srv, PATH, port=proxy.port)

    flv, rtsp = FlvPlayer(srv.port, PATH), RtspPlayer(srv.port, PATH)
    assert flv.open() == 200
    assert rtsp.setup_all() == 200 and rtsp.play() == 200
    threads = [threading.Thread(target=p.read_for, args=(PLAY_SECONDS,)) for p in (flv, rtsp)]
    for t in threads:
        t.start()
    # While they play: one live stream, one publisher, one player of each.
    prom.wait_for("ipchub_streams_live", lambda v: v == 1)
    prom.wait_for('ipchub_publishers{protocol="rtsp"}', lambda v: v == 1)
    prom.wait_for('ipchub_players{protocol="flv"}', lambda v: v == 1)
    prom.wait_for('ipchub_players{protocol="rtsp"}', lambda v: v == 1)
    for t in threads:
        t.join(PLAY_SECONDS + 10)
    flv.close()
    rtsp.close()
    prom.wait_for('sum(ipchub_players)', lambda v: v == 0)

    pusher.stop()
    wait_until(lambda: not stream_live(srv, PATH), 10, "stream ended", srv)
    pushed = proxy.upstream_bytes
    proxy.close()
    prom.wait_for("ipchub_streams_live", lambda v: v == 0)
    time.sleep(2.5)  # two more scrapes after the end: the final counts are in

    assert prom.value('ipchub_player_sessions_total{protocol="flv"}') == 1
    assert prom.value('ipchub_player_sessions_total{protocol="rtsp"}') == 1
    bytes_in = prom.value(f'ipchub_stream_bytes_in_total{{path="{PATH}"}}')
    bytes_out = prom.value(f'ipchub_stream_bytes_out_total{{path="{PATH}"}}')
    assert bytes_in is not None and bytes_out is not None
    # In: every byte ffmpeg sent but its first OPTIONS (answered by the front).
    assert pushed > 100_000
    assert within(bytes_in, pushed, 0.01, 1024), (bytes_in, pushed)
    # Out: what the two players read, plus at most what was still in flight when they closed.
    played = flv.body + rtsp.body
    assert played > 100_000
    assert played <= bytes_out <= played * 1.05 + 64 * 1024, (bytes_out, flv.body, rtsp.body)
    assert prom.value("ipchub_rtp_packets_lost_total") == 0
    assert (prom.value('ipchub_ipc_request_seconds_count{method="open_stream"}') or 0) >= 1
    assert prom.value('ipchub_api_requests_total{route="/api/v1/streams/{path:path}",status="200"}')

    # SIGKILL a front: it is replaced, and no counter of the tree goes back.
    sessions_before = prom.value('sum(ipchub_player_sessions_total)')
    child_named(srv, "front-0").send_signal(signal.SIGKILL)
    prom.wait_for('ipchub_child_restarts_total{process="front-0"}', lambda v: v == 1)
    wait_until(lambda: ready(srv), 15, "ready again", srv)
    pusher2 = push(srv, PATH)
    again = FlvPlayer(srv.port, PATH)
    assert again.open() == 200
    again.read_for(1.0)
    again.close()
    pusher2.stop()
    prom.wait_for('sum(ipchub_player_sessions_total)', lambda v: v is not None and sessions_before is not None
                  and v == sessions_before + 1)
    span = int(time.time() - started) + 5
    counters = [n for n in METRICS if n.endswith("_total")]
    counters += [h + part for h in HISTOGRAMS for part in ("_bucket", "_count", "_sum")]
    for name in counters:
        assert prom.query(f"resets({name}[{span}s]) > 0") == [], name
    assert prom.query(f"resets(ipchub_stream_bytes_out_total[{span}s])"), "no byte series to check"
