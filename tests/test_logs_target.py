"""hub.logs.loggable_target: what a log line may show of a request target."""

from __future__ import annotations

from hub.logs import loggable_target


def test_no_query_and_no_userinfo_in_a_logged_target() -> None:
    assert loggable_target("/streams/live/cam.flv?token=SECRET") == "/streams/live/cam.flv"
    assert loggable_target("rtsp://user:pa@ss@127.0.0.1:1554/live/cam?token=SECRET") == "rtsp://127.0.0.1:1554/live/cam"
    assert loggable_target("rtsp://127.0.0.1/live/a@b") == "rtsp://127.0.0.1/live/a@b"  # an @ in the path stays
    assert loggable_target("rtmp://host/app?user=u&pass=SECRET") == "rtmp://host/app"
    assert loggable_target("/" + "x" * 500) == "/" + "x" * 119
    assert loggable_target("*") == "*"
