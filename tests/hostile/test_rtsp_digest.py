"""Issue 12, defect 8: Digest credentials were accepted for any URI: a
response computed (with the right password) for another path opened this
one. Now the credentials' `uri` must be the request's (RFC 2617 §3.2.2.5),
and a nonce the server did not issue, or issued too long ago, is refused
with a fresh challenge that says `stale=TRUE`. End to end against a real
tree with the server's users (the nonce's age: test_rtsp_digest_nonce_age)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from hub.media.rtsp.auth import DigestChallenge, parse_challenge
from tests.conftest import HubServer
from tests.e2e.tools import Pusher, make_media, play

from .rtsp_peers import RawRtsp, digest

pytestmark = pytest.mark.e2e


def test_digest_for_another_path_or_an_unknown_nonce_is_refused(
        hub_factory: Callable[..., HubServer], tmp_path: Path) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", "--auth")  # Digest, admin/admin
    url = srv.rtsp_url("/live/d")
    other = srv.rtsp_url("/live/other")
    with Pusher(url.replace("rtsp://", "rtsp://admin:admin@"), make_media(tmp_path, "h264")):
        wait_live_with_token(srv, "/live/d")
        conn = RawRtsp(srv.port)
        try:
            first = conn.ask("DESCRIBE", url, 1)
            assert first.status == 401
            challenge = first.headers["WWW-Authenticate"]
            assert isinstance(parse_challenge(challenge), DigestChallenge)
            # The right password, a fresh nonce, but computed for another path.
            resp = conn.ask("DESCRIBE", url, 2, ("Authorization", digest(challenge, "admin", "admin", "DESCRIBE", other)))
            assert resp.status == 401, "credentials for /live/other opened /live/d"
            # ...and for another method on this path.
            resp = conn.ask("DESCRIBE", url, 3, ("Authorization", digest(challenge, "admin", "admin", "PLAY", url)))
            assert resp.status == 401
            # A nonce this server never issued: refused, stale (the client may
            # retry at once with the new nonce, without asking its user).
            made_up = challenge.replace(parse_challenge(challenge).nonce, "0" * 32)  # type: ignore[union-attr]
            resp = conn.ask("DESCRIBE", url, 4, ("Authorization", digest(made_up, "admin", "admin", "DESCRIBE", url)))
            assert resp.status == 401
            fresh = parse_challenge(resp.headers["WWW-Authenticate"])
            assert isinstance(fresh, DigestChallenge) and fresh.stale
            # The very same client, computing for this request: served.
            resp = conn.ask("DESCRIBE", url, 5, ("Authorization", digest(challenge, "admin", "admin", "DESCRIBE", url)))
            assert resp.status == 200 and resp.body.startswith(b"v=0")
            assert conn.closed_at is None
        finally:
            conn.close()
        # A real Digest client (FFmpeg's, under PyAV) still plays.
        r = play(url.replace("rtsp://", "rtsp://admin:admin@"), frames=20, timeout=15)
        assert r.video_codec == "h264" and r.video_frames >= 20 and r.advancing()


def wait_live_with_token(srv: HubServer, path: str, timeout: float = 15.0) -> None:
    """Until the stream is live: its FLV URL answers, with a token (auth is on)."""
    token = srv.token()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{srv.base}/streams{path}.flv?token={token}", timeout=2) as r:
                if r.read(3) == b"FLV":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} did not go live\n{srv.log()[-2000:]}")
