"""Issue 12, defect 9: refused RTSP requests changed state. A TEARDOWN with
a wrong session was answered 454 and the real session was closed anyway;
an ANNOUNCE on a playing connection was answered only after the connection
had been handed to a shard (playback stopped). Now a refused request
changes nothing: the player that sent them keeps receiving its stream on
the same connection, without a gap, and the stream is still whole for a
decoding player (PyAV)."""

from __future__ import annotations

import time
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher, play
from tests.hostile.harness import FlvWatcher, problems

from .rtsp_peers import RawRtsp, longest_gap, rtp_of

pytestmark = pytest.mark.e2e

SDP = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n")


def test_refused_teardown_and_announce_leave_the_player_playing(
        hub: HubServer, push: Callable[..., Pusher], watch: Callable[..., FlvWatcher]) -> None:
    url = hub.rtsp_url("/live/r9")
    push("/live/r9")
    watcher = watch(hub, "/live/r9")
    conn = RawRtsp(hub.port)
    try:
        session = conn.play_tcp(url)
        time.sleep(1.0)
        assert rtp_of(conn.frames, 0), "no RTP before the refused requests"

        refused_at = time.monotonic()
        wrong = "0" * len(session) if session != "0" * len(session) else "1" * len(session)
        teardown = conn.ask("TEARDOWN", url, 4, ("Session", wrong))
        assert teardown.status == 454
        announce = conn.ask("ANNOUNCE", url, 5, ("Session", session), ("Content-Type", "application/sdp"),
                            body=SDP)
        assert announce.status == 455
        announce = conn.ask("ANNOUNCE", url, 6, ("Content-Type", "application/sdp"), body=SDP)
        assert announce.status == 455
        time.sleep(3.0)
        # The same connection, the same session: still open, still playing.
        assert conn.closed_at is None
        assert conn.ask("GET_PARAMETER", url, 7, ("Session", session)).status == 200
        packets = rtp_of(conn.frames, 0)
        after = [p for p in packets if p[0] >= refused_at]
        assert len(after) > 50, f"{len(after)} RTP packets in the 3 s after the refused requests"
        assert longest_gap([p[0] for p in packets], refused_at, time.monotonic()) < 1.0
        seqs = [p[1] for p in after]
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:])), "RTP sequence broke"
        assert after[-1][2] != after[0][2]  # timestamps advance
        # The publisher was not disturbed either: a decoding player gets it whole.
        r = play(url, frames=25, timeout=15)
        assert r.video_codec == "h264" and (r.width, r.height) == (640, 360)
        assert r.video_frames >= 25 and r.advancing() and r.decode_errors == 0
        watcher.assert_flowing(refused_at, context=problems(hub))
        assert conn.ask("TEARDOWN", url, 8, ("Session", session)).status == 200
        assert conn.wait_closed(5.0)
    finally:
        conn.close()
