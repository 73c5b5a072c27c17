"""Headless Chromium plays H.264 from the engine over WebRTC (WHEP answer,
ICE-lite, DTLS, SRTP), in a network namespace with only loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hub.media.webrtc.offer import parse_offer
from tests.e2e.browser import chromium_path

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
FRAMES = 200


def _play(profile: str) -> dict[str, Any]:
    # A namespace of our own: root makes one directly, anyone else through a user namespace.
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    script = f'ip link set lo up && exec "{sys.executable}" "{HERE / "chromium_whep.py"}" ' \
             f'"{chromium_path()}" {profile} {FRAMES}'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
    r = subprocess.run([*unshare, "sh", "-c", script], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=150)
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("profile", ["baseline", "high"])
def test_chromium_plays_the_engines_h264(profile: str) -> None:
    got = _play(profile)
    offer = parse_offer(got["offer"])
    chosen = next(c for c in offer.media[0].codecs if c.payload_type == got["payload_type"])
    assert chosen.name == "H264" and chosen.params["packetization-mode"] == "1"
    # Constrained baseline goes out as 42e01f; Chromium offers no High (64xxxx),
    # so a High stream goes out as the most capable offered class, Main.
    assert chosen.params["profile-level-id"][:2] == {"baseline": "42", "high": "4d"}[profile]
    assert got["srtp"] == "SRTP_AEAD_AES_128_GCM"
    assert got["units"] == FRAMES
    times = [t for t, _w, _h in got["samples"]]
    assert {(w, h) for _t, w, h in got["samples"]} == {(320, 240)}
    assert all(b > a for a, b in zip(times, times[1:])) and times[-1] > 5.0
    (video,) = [s for s in got["inbound"] if s["kind"] == "video"]
    assert video["framesDecoded"] >= FRAMES - 10 and video["frameWidth"] == 320
    assert video["pliCount"] == 0 and video["packetsLost"] == 0
