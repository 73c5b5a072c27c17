"""HTTP-FLV and WebSocket-FLV players against pushed streams, decoded with PyAV."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Callable

import pytest

from hub.media.flv import FlvReader, FlvTag, parse_video
from tests.conftest import HubServer
from tests.e2e.tools import Pusher, play

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("variant, codec", [("h264", "h264"), ("h264_slices", "h264"), ("h265", "hevc")])
def test_http_flv_decodes(hub: HubServer, push: Callable[..., Pusher], variant: str, codec: str) -> None:
    push(f"/live/{variant}", variant)
    r = play(f"{hub.base}/streams/live/{variant}.flv", frames=50, timeout=20)
    assert r.video_codec == codec and r.audio_codec == "aac"
    assert (r.width, r.height) == (640, 360)
    assert r.video_frames >= 50 and r.first_video_key
    assert r.decode_errors == 0, r.log[:10]
    assert r.advancing()


def _raw_flv(port: int, path: str, nbytes: int, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < nbytes and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def test_first_video_tag_is_keyframe_after_sequence_header(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/gop", "h264")
    time.sleep(1.3)  # join mid-GOP
    data = _raw_flv(hub.port, "/streams/live/gop.flv", 200_000)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"video/x-flv" in head and b"Access-Control-Allow-Origin: *" in head
    reader = FlvReader()
    reader.feed(body)
    videos = [parse_video(ev.data) for ev in reader.events() if isinstance(ev, FlvTag) and ev.tag_type == 9]
    assert videos[0].packet_type == 0  # AVC sequence header
    assert videos[1].keyframe


@pytest.mark.parametrize("variant, codec", [("h264", "h264"), ("h265", "hevc")])
def test_ws_flv_one_message_per_tag_and_decodes(hub: HubServer, push: Callable[..., Pusher],
                                                variant: str, codec: str) -> None:
    import av
    import io

    import websockets.sync.client as wsc

    push("/live/ws", variant)
    for url in (f"ws://127.0.0.1:{hub.port}/streams/live/ws.flv", f"ws://127.0.0.1:{hub.port}/ws/live/ws.flv"):
        msgs = []
        with wsc.connect(url, open_timeout=5, max_size=None) as ws:
            deadline = time.monotonic() + 10
            while len(msgs) < 150 and time.monotonic() < deadline:
                msgs.append(ws.recv(timeout=5))
        assert msgs[0][:3] == b"FLV" and len(msgs[0]) == 13
        for m in msgs[1:]:
            reader = FlvReader()
            reader.feed(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + m)
            events = reader.events()
            assert len(events) == 2 and isinstance(events[1], FlvTag)  # header + exactly one tag
        blob = b"".join(msgs)
        with av.open(io.BytesIO(blob), format="flv") as c:
            assert c.streams.video[0].codec_context.name == codec
            frames = sum(1 for _ in c.decode(video=0))
        assert frames >= 40


def test_unknown_stream_is_404_at_once(hub: HubServer) -> None:
    t0 = time.monotonic()
    data = _raw_flv(hub.port, "/streams/live/none.flv", 1)
    assert data.startswith(b"HTTP/1.1 404")
    assert time.monotonic() - t0 < 1.0


def test_200_players_receive_identical_bytes(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/many", "h264")
    n, want = 200, 300_000

    async def one() -> bytes:
        r, w = await asyncio.open_connection("127.0.0.1", hub.port)
        w.write(b"GET /streams/live/many.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        await r.readuntil(b"\r\n\r\n")
        data = await asyncio.wait_for(r.readexactly(want), 30)
        w.close()
        return data

    async def main() -> list[bytes]:
        # Join all at once (between two wake-ups) so they start at the same tag.
        return await asyncio.gather(*(one() for _ in range(n)))

    blobs = asyncio.run(main())
    tag_lists = []
    for b in blobs:
        reader = FlvReader()
        reader.feed(b)
        tag_lists.append([(ev.tag_type, ev.timestamp, ev.data) for ev in reader.events()
                          if isinstance(ev, FlvTag) and ev.tag_type in (8, 9)])
    # Players joined at slightly different moments: compare the stretch of
    # the stream every one of them received.
    lo = max(tags[0][1] for tags in tag_lists if tags)
    hi = min(tags[-1][1] for tags in tag_lists if tags)
    assert hi - lo > 1000, "players should overlap by more than a second of stream"
    windows = [[t for t in tags if lo <= t[1] < hi] for tags in tag_lists]
    assert all(w == windows[0] for w in windows), "players did not receive identical tags"


def test_g711_audio_over_flv_and_rtsp(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """G.711 passes through to RTSP players unchanged and is FLV's own sound format."""
    push("/live/pcma", "h264_pcma")
    r = play(f"{hub.base}/streams/live/pcma.flv", frames=25, timeout=15)
    assert r.video_codec == "h264" and r.audio_codec == "pcm_alaw" and r.audio_frames > 0
    assert r.decode_errors == 0, r.log[:10]
    r = play(hub.rtsp_url("/live/pcma"), frames=25, timeout=15)
    assert r.video_codec == "h264" and r.audio_codec == "pcm_alaw" and r.audio_frames > 0


def test_cache_gop_off_starts_players_at_the_next_keyframe(
        hub_factory: Callable[..., HubServer], media: Callable[[str], object], tmp_path: object) -> None:
    from pathlib import Path

    from tests.e2e.conftest import wait_live

    cfg = Path(str(tmp_path)) / "nogop.json"
    cfg.write_text('{"cache_gop": false}')
    srv = hub_factory("--shards", "1", "--fronts", "1", "--config", str(cfg))
    with Pusher(srv.rtsp_url("/live/nogop"), media("h264")):  # type: ignore[arg-type]
        wait_live(srv, "/live/nogop")
        time.sleep(0.5)  # mid-GOP
        data = _raw_flv(srv.port, "/streams/live/nogop.flv", 60_000)
        reader = FlvReader()
        reader.feed(data.partition(b"\r\n\r\n")[2])
        videos = [(ev.timestamp, parse_video(ev.data)) for ev in reader.events()
                  if isinstance(ev, FlvTag) and ev.tag_type == 9]
        assert videos[0][1].packet_type == 0 and videos[1][1].keyframe
        # No replay of the past GOP: the first frame is one the publisher sent
        # after the player joined, so its timestamp is near the live edge.
        assert videos[1][0] >= 1000
        r = play(f"{srv.base}/streams/live/nogop.flv", frames=25, timeout=15)
        assert r.first_video_key and r.decode_errors == 0


def test_b_frames_get_rising_dts_in_flv_and_decode(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """RTP has only PTS: the server derives a DTS so FLV timestamps rise in
    decode order with non-negative composition offsets."""
    push("/live/bf", "h264_bframes")
    data = _raw_flv(hub.port, "/streams/live/bf.flv", 400_000, timeout=15)
    reader = FlvReader()
    reader.feed(data.partition(b"\r\n\r\n")[2])
    frames = [(ev.timestamp, parse_video(ev.data)) for ev in reader.events()
              if isinstance(ev, FlvTag) and ev.tag_type == 9]
    frames = [(ts, v) for ts, v in frames if v.packet_type == 1]
    assert len(frames) > 50
    dts = [ts for ts, _v in frames]
    assert all(b >= a for a, b in zip(dts, dts[1:])), "FLV DTS must not go back"
    # Past the stream's first GOP (where reordering is first noticed), a
    # steady frame duration per frame.
    assert all(b > a for a, b in zip(dts[25:], dts[26:])), dts[:60]
    assert any(v.cts > 0 for _ts, v in frames), "B-frames should show as composition offsets"
    assert all(v.cts >= 0 for _ts, v in frames[25:])
    for url in (f"{hub.base}/streams/live/bf.flv", f"{hub.base}/streams/live/bf.m3u8"):
        r = play(url, frames=50, timeout=20)
        assert r.video_frames >= 50 and r.decode_errors == 0, r.log[:10]
        assert all(b > a for a, b in zip(r.video_pts, r.video_pts[1:])), "frames out of order"
