"""RTSP: pushed over TCP and UDP, played over TCP, UDP and multicast."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e

CASES = [
    ("h264", "tcp", "h264"),
    ("h264", "udp", "h264"),
    ("h265", "tcp", "hevc"),
    ("h264_slices", "tcp", "h264"),
]


@pytest.mark.parametrize("variant, push_transport, codec", CASES)
@pytest.mark.parametrize("play_transport", ["tcp", "udp"])
def test_push_and_play(hub: HubServer, push: Callable[..., Pusher], variant: str,
                       push_transport: str, codec: str, play_transport: str) -> None:
    path = f"/live/{variant}_{push_transport}"
    push(path, variant, transport=push_transport)
    r = play(hub.rtsp_url(path), frames=50, timeout=20, options={"rtsp_transport": play_transport})
    assert r.video_codec == codec and r.audio_codec == "aac"
    assert (r.width, r.height) == (640, 360)
    assert r.video_frames >= 50
    assert r.first_video_key, "a player joining mid-GOP must get an IDR first"
    assert r.decode_errors == 0, r.log[:10]
    assert r.advancing()


@pytest.mark.parametrize("variant, push_transport, codec", CASES)
def test_play_multicast(hub: HubServer, push: Callable[..., Pusher], variant: str,
                        push_transport: str, codec: str) -> None:
    path = f"/live/mc_{variant}_{push_transport}"
    push(path, variant, transport=push_transport)
    r = play(hub.rtsp_url(path), frames=30, timeout=20, options={"rtsp_transport": "udp_multicast"},
             wait_key=True)
    assert r.video_codec == codec and (r.width, r.height) == (640, 360)
    # A multicast group is shared: a joiner gets what flows (no GOP replay to
    # everyone), so like any player it starts decoding at the next keyframe;
    # from there nothing may be broken.
    assert r.video_frames >= 30 and r.decode_errors == 0, r.log[:10]


def test_streams_on_different_shards_play_at_once(hub: HubServer, push: Callable[..., Pusher]) -> None:
    from hub.placement import shard_of

    a = "/live/a0"
    b = next(f"/live/b{i}" for i in range(100) if shard_of(f"/live/b{i}", 2) != shard_of(a, 2))
    push(a, "h264")
    push(b, "h264")
    ra = play(hub.rtsp_url(a), frames=25, timeout=15)
    rb = play(hub.rtsp_url(b), frames=25, timeout=15)
    assert ra.video_frames >= 25 and rb.video_frames >= 25


def _rtsp(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in out and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_bad_requests(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/bad", "h264")
    url = hub.rtsp_url("/live/bad")
    assert _rtsp(hub.port, f"DESCRIBE {hub.rtsp_url('/live/none')} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode()) \
        .startswith(b"RTSP/1.0 404")
    # A session this connection does not have is 454 (RFC 2326 12.37), before any state check...
    assert _rtsp(hub.port, f"PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: nope\r\n\r\n".encode()) \
        .startswith(b"RTSP/1.0 454")
    # ...and PLAY before SETUP is 455.
    assert _rtsp(hub.port, f"PLAY {url} RTSP/1.0\r\nCSeq: 2\r\n\r\n".encode()).startswith(b"RTSP/1.0 455")
    r = _rtsp(hub.port, f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/XYZ\r\n\r\n".encode())
    assert r.startswith(b"RTSP/1.0 461"), r
    r = _rtsp(hub.port, f"DESCRIBE {url} RTSP/1.0\r\nCSeq 4\r\n\r\n".encode())
    assert r.startswith(b"RTSP/1.0 400"), r
    with socket.create_connection(("127.0.0.1", hub.port), timeout=3) as s:
        s.sendall(f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 5\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n".encode())
        resp = s.recv(4096)
        assert resp.startswith(b"RTSP/1.0 200")
        s.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: 6\r\nSession: wrong\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"RTSP/1.0 454")
    # The stream and its other players are untouched.
    r = play(url, frames=10, timeout=10)
    assert r.video_frames >= 10


def test_players_get_rtcp_sender_reports(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """Every track's SR names its SSRC and counts, and maps RTP time to wall
    time as its packets arrive: players (FFmpeg, live555, NVRs) re-base and
    lip-sync each track on these pairs, so a mapping off by seconds on one
    track puts audio and video seconds apart, or steps a track's clock."""
    from hub.media.rtcp import SenderReport, parse_compound
    from hub.media.rtp import RtpPacket
    from hub.media.rtsp import InterleavedFrame, RtspReader, RtspResponse

    push("/live/sr", "h264")  # H.264 (90 kHz) + AAC (44.1 kHz)
    url = hub.rtsp_url("/live/sr")
    rates = (90000, 44100)
    reader = RtspReader()
    ssrc_rtp: dict[int, set[int]] = {0: set(), 1: set()}
    packets: dict[int, list[tuple[int, float]]] = {0: [], 1: []}  # (RTP timestamp, arrival)
    reports: dict[int, list[tuple[SenderReport, float]]] = {0: [], 1: []}
    with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as s:
        s.sendall(f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\n"
                  f"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n".encode())
        session = None
        answers = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (reports[0] and reports[1] and time.time() > max(
                at for r in reports.values() for _sr, at in r) + 1.0):
            reader.feed(s.recv(65536))
            now = time.time()
            for ev in reader.events():
                if isinstance(ev, RtspResponse):
                    answers += 1
                    if answers == 1:
                        session = ev.headers["Session"].split(";")[0]
                        s.sendall(f"SETUP {url}/trackID=1 RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n"
                                  f"Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n".encode())
                    elif answers == 2:
                        s.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n".encode())
                elif isinstance(ev, InterleavedFrame) and ev.channel in (0, 2):
                    pkt = RtpPacket.parse(bytes(ev.payload))
                    ssrc_rtp[ev.channel // 2].add(pkt.ssrc)
                    packets[ev.channel // 2].append((pkt.timestamp, now))
                elif isinstance(ev, InterleavedFrame) and ev.channel in (1, 3):
                    reports[ev.channel // 2] += [(r, now) for r in parse_compound(bytes(ev.payload))
                                                 if isinstance(r, SenderReport)]
    for track in (0, 1):
        assert reports[track], f"no RTCP sender report for track {track} within 15 s"
        sr, _at = reports[track][0]
        assert sr.ssrc in ssrc_rtp[track] and sr.packet_count > 0 and sr.octet_count > 0
        sr_wall = (sr.ntp >> 32) - 2208988800 + (sr.ntp & 0xFFFFFFFF) / 2**32
        assert abs(sr_wall - time.time()) < 60
        # The packets that arrived within a second of the report: their RTP
        # time, by the report's mapping, is when they arrived (loopback,
        # real time; AAC comes in small bunches).
        errors = [((ts - sr.rtp_timestamp + 2**31) % 2**32 - 2**31) / rates[track] - (at - sr_wall)
                  for ts, at in packets[track] if abs(at - sr_wall) < 1.0]
        assert errors and max(abs(e) for e in errors) < 0.3, (track, min(errors), max(errors))


def test_a_url_with_a_query_publishes_and_plays(hub: HubServer, media: Callable[[str], Path]) -> None:
    """Camera-style URLs carry a query (`?channel=1&subtype=0`, a token).
    FFmpeg publishing to one sends its SETUPs as the whole URL, query
    included, then the control (`...?channel=1&subtype=0/streamid=0`): they
    were refused (400: "a track the ANNOUNCE did not describe"), so such a
    publish failed. Players that do the same with our control get their
    track too; the stream is the path without the query."""
    from tests.e2e.conftest import wait_live

    url = hub.rtsp_url("/live/query")
    for transport in ("tcp", "udp"):
        with Pusher(url + "?channel=1&subtype=0", media("h264"), transport):
            wait_live(hub, "/live/query")
            r = play(url + "?channel=1", frames=25, timeout=15, options={"rtsp_transport": "tcp"})
            assert (r.video_codec, r.audio_codec) == ("h264", "aac") and r.video_frames >= 25 and r.advancing()
            with socket.create_connection(("127.0.0.1", hub.port), timeout=3) as s:
                s.sendall(f"SETUP {url}?channel=1/trackID=1 RTSP/1.0\r\nCSeq: 1\r\n"
                          "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n".encode())
                assert s.recv(4096).startswith(b"RTSP/1.0 200")
        time.sleep(0.5)  # the path is free again for the next publisher
