"""SIGHUP reloads the configuration file: the log level and `hlsfragment`
change in every child while a player stays attached; a key that needs a
restart is logged as such, a bad file changes nothing."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher
from tests.ops.clients import FlvPlayer
from tests.ops.conftest import wait_until

pytestmark = pytest.mark.e2e

PATH = "/live/reload"


def extinfs(srv: HubServer) -> list[float]:
    with urllib.request.urlopen(f"{srv.base}/streams{PATH}.m3u8", timeout=20) as r:
        text = r.read().decode()
    return [float(x) for x in re.findall(r"#EXTINF:([0-9.]+)", text)]


def debug_joins(srv: HubServer) -> int:
    return len(re.findall(r"front-\d+\[\d+\] DEBUG hub\.api\.context: /live/reload: player .* joining", srv.log()))


def test_sighup_changes_log_level_and_hlsfragment_without_dropping_a_player(
        tmp_path: Path, hub_factory: Callable[..., HubServer], push: Callable[..., Pusher]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"log": {"level": "INFO"}, "hlsfragment": 2}))
    srv = hub_factory("--config", str(config), "--shards", "1", "--fronts", "2")
    push(srv, PATH)
    player = FlvPlayer(srv.port, PATH)
    assert player.open() == 200
    reading = threading.Thread(target=player.read_for, args=(60.0,))
    reading.start()
    # HLS at 2 s: the test media has a keyframe every second.
    wait_until(lambda: len(extinfs(srv)) >= 3, 20, "three HLS segments", srv)
    before = extinfs(srv)
    assert all(d < 3.0 for d in before), before
    probe = FlvPlayer(srv.port, PATH)
    assert probe.open() == 200
    probe.close()
    time.sleep(0.3)
    assert debug_joins(srv) == 0

    config.write_text(json.dumps({"log": {"level": "DEBUG"}, "hlsfragment": 4, "rtsp_session_timeout": 30}))
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: applied hlsfragment, log.level in 3 of 3 children" in srv.log(), 10,
               "reload applied", srv)
    assert "reload: rtsp_session_timeout changed but need a restart" in srv.log()
    received_at_reload = player.body

    # Every front logs at DEBUG now. The kernel picks the front of each
    # probe (SO_REUSEPORT): six could all land on one (1 in 32), so probe
    # until both have answered, at most 40 times (all on one: 1 in 2^39).
    def fronts_at_debug() -> int:
        return len(set(re.findall(r"(front-\d+)\[\d+\] DEBUG", srv.log())))

    for probes in range(1, 41):
        probe = FlvPlayer(srv.port, PATH)
        assert probe.open() == 200
        probe.close()
        if probes >= 6:
            wait_until(lambda n=probes: debug_joins(srv) >= n, 5, "debug lines of the new players", srv)
            if fronts_at_debug() == 2:
                break
    assert fronts_at_debug() == 2
    # New segments are cut at 4 s.
    wait_until(lambda: any(d > 3.5 for d in extinfs(srv)), 20, "a 4 s HLS segment", srv)

    # The player attached before the reload was never dropped.
    time.sleep(1.0)
    assert reading.is_alive()
    assert player.body > received_at_reload + 50_000
    player.close()
    reading.join(5)

    # A file that does not validate changes nothing.
    config.write_text(json.dumps({"log": {"level": "LOUD"}}))
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "the running configuration stays" in srv.log(), 10, "bad reload refused", srv)
    assert srv.proc.poll() is None
