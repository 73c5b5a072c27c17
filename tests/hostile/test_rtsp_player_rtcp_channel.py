"""A player's interleaved channels: RTCP goes on the channel it declared.

Before, the sender reports went on the RTP channel + 1 whatever the player
declared, so `interleaved=255-255` (a valid header) made that channel 256:
the stream's report timer raised on it, logged a traceback, and never ran
again, so every other player of the stream got no sender report after it.
Now the reports go on the declared RTCP channel (255), to each player."""

from __future__ import annotations

import time
from typing import Callable

import pytest

from pathlib import Path

from tests.conftest import HubServer
from tests.e2e.conftest import wait_live
from tests.e2e.tools import Pusher, make_media

from .rtsp_peers import RawRtsp, rtp_of, session_of

pytestmark = pytest.mark.e2e

SR = 200  # RTCP packet type of a sender report


def start_player(hub: HubServer, url: str, channels: str) -> RawRtsp:
    conn = RawRtsp(hub.port)
    assert conn.ask("DESCRIBE", url, 1).status == 200
    setup = conn.ask("SETUP", f"{url}/trackID=0", 2, ("Transport", f"RTP/AVP/TCP;unicast;interleaved={channels}"))
    assert setup.status == 200, setup
    assert f"interleaved={channels}" in setup.headers["Transport"]
    assert conn.ask("PLAY", url, 3, ("Session", session_of(setup))).status == 200
    return conn


def reports_on(conn: RawRtsp, channel: int) -> int:
    return sum(1 for f in conn.frames if f.channel == channel and len(f.payload) >= 8 and f.payload[1] == SR)


def test_a_player_on_channel_255_gets_its_reports_and_others_keep_theirs(
        hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    hub = hub_factory("--shards", "1", "--fronts", "1")  # both players in one fan-out
    url = hub.rtsp_url("/live/ch255")
    pusher = Pusher(url, make_media(tmp_path, "h264")).start()
    wait_live(hub, "/live/ch255")
    odd = start_player(hub, url, "255-255")  # joins the fan-out first
    plain = start_player(hub, url, "0-1")
    try:
        deadline = time.monotonic() + 9.0  # reports every 5 s
        while time.monotonic() < deadline and not (reports_on(plain, 1) and reports_on(odd, 255)):
            time.sleep(0.2)
        assert rtp_of(odd.frames, 255), "the player on channel 255 got no RTP"
        assert reports_on(plain, 1), "a player got no sender report once another declared channel 255"
        assert reports_on(odd, 255), "no sender report on the declared RTCP channel"
        assert "Traceback" not in hub.log()
    finally:
        pusher.stop()
        odd.close()
        plain.close()
