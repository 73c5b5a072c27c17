"""WHEP playback and WHIP ingest through the whole server tree (2 shards, 2
fronts), with aiortc as the real peer: frames decoded, sessions counted,
ended by DELETE or by silence, refusals with their statuses."""

from __future__ import annotations

import asyncio
import http.client as httpc
import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import HubServer
from tests.e2e.tools import Pusher, play
from tests.e2e.webrtc_peers import ahttp, http, sdp_headers, whep, whip
from tests.ops.clients import metrics

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[1] / "data"
AIORTC_OFFER = (DATA / "sdp_aiortc_whep_offer.txt").read_text()
FRAG = "application/trickle-ice-sdpfrag"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiortc's ICE gathers every interface but loopback; keep it on 127.0.0.1."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def _consumers(hub: HubServer, path: str) -> list[dict[str, Any]]:
    try:
        info = hub.get_json(f"/api/v1/streams{path}?c=1")
    except OSError:
        return []
    return list(info.get("cs", []))


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.2)


def _gauge(port: int, name: str, protocol: str) -> float:
    return metrics(port).get((name, (("protocol", protocol),)), 0.0)


def _advancing(frames: list[Any]) -> bool:
    pts = [f.pts for f in frames]
    return all(b > a for a, b in zip(pts, pts[1:]))


def _keyframes(url: str, seconds: float) -> int:
    """Video keyframes a player of `url` receives in `seconds`."""
    import av

    n = 0
    t0 = time.monotonic()
    with av.open(url, timeout=10) as c:
        for pkt in c.demux(c.streams.video[0]):
            n += bool(pkt.is_keyframe and pkt.size)
            if time.monotonic() - t0 > seconds:
                break
    return n


def test_whep_plays_a_pushed_h264_stream(hub: HubServer, push: Callable[..., Pusher]) -> None:
    path = "/live/whep"
    push(path, "h264")  # H.264 (no B-frames) + AAC

    async def run() -> None:
        p = await whep(hub.base, path)
        try:
            r = p.reply
            assert r.status == 201, r.text
            assert r.headers["content-type"] == "application/sdp"
            assert r.headers["location"].startswith(f"/streams{path}/whep/")
            assert len(r.headers["location"].rsplit("/", 1)[1]) >= 22  # 128 random bits, base64
            assert r.headers["etag"].startswith('"') and r.headers["accept-patch"] == FRAG
            assert "a=ice-lite" in r.text and "\r\nm=audio 0 " in r.text  # AAC has no WebRTC payload
            frames = await p.video_frames(40)
            assert {(f.width, f.height) for f in frames} == {(640, 360)}
            assert _advancing(frames)
            (c,) = await asyncio.to_thread(_consumers, hub, path)
            assert c["packet_type"] == "RTP" and c["extra"].startswith("net=webrtc,127.0.0.1:")
            assert c["flow"]["outbytes"] > 10_000
            rt = await asyncio.to_thread(hub.get_json, "/api/v1/runtime")
            assert rt["webrtc"]["active"] == 1 and rt["webrtc"]["total"] >= 1
            assert await asyncio.to_thread(_gauge, hub.port, "ipchub_players", "whep") == 1
            # A second session, kicked through the API like any player.
            other = await ahttp("POST", f"{hub.base}/streams{path}/whep", AIORTC_OFFER, sdp_headers())
            assert other.status == 201
            (kicked,) = [x for x in await asyncio.to_thread(_consumers, hub, path) if x["id"] != c["id"]]
            r = await ahttp("DELETE", f"{hub.base}/api/v1/streams{path}:consumer?cid={kicked['id']}&token={hub.token()}")
            assert r.status == 200
            await _until(lambda: len(_consumers(hub, path)) == 1, 5, "the kicked session ended")
            assert (await ahttp("DELETE", hub.base + other.headers["location"])).status == 404
            # DELETE ends it (on whichever front the connection lands).
            assert (await ahttp("DELETE", p.location)).status == 200
            await _until(lambda: not _consumers(hub, path), 5, "the player left the stream")
            assert (await ahttp("DELETE", p.location)).status == 404
            rt = await asyncio.to_thread(hub.get_json, "/api/v1/runtime")
            assert rt["webrtc"]["active"] == 0
        finally:
            await p.close()

    asyncio.run(asyncio.wait_for(run(), 90))


def test_sessions_are_ended_and_patched_on_any_front(hub: HubServer, push: Callable[..., Pusher]) -> None:
    """Sessions on both fronts; a kept-alive connection pinned to one front
    PATCHes and DELETEs the other front's sessions (passed on through the
    stream's shard), fresh connections the rest, wherever they land."""
    path = "/live/fronts"
    push(path, "h264")
    pinned = httpc.HTTPConnection("127.0.0.1", hub.port, timeout=10)

    def post(conn: httpc.HTTPConnection | None) -> tuple[str, str, int]:
        """A session: (URL, ETag, index of the front holding it, from its consumer id)."""
        before = {c["id"] for c in _consumers(hub, path)}
        if conn is None:
            r = http("POST", f"{hub.base}/streams{path}/whep", AIORTC_OFFER, sdp_headers())
            status, headers = r.status, r.headers
        else:
            conn.request("POST", f"/streams{path}/whep", AIORTC_OFFER.encode(), sdp_headers())
            resp = conn.getresponse()
            resp.read()
            status, headers = resp.status, {k.lower(): v for k, v in resp.getheaders()}
        assert status == 201
        (cid,) = {c["id"] for c in _consumers(hub, path)} - before
        return hub.base + headers["location"], headers["etag"], cid & 0xFF

    def pinned_call(method: str, url: str, body: str = "", headers: dict[str, str] | None = None) -> int:
        pinned.request(method, url.removeprefix(hub.base), body.encode(), headers or {})
        resp = pinned.getresponse()
        resp.read()
        return resp.status

    try:
        home = post(pinned)[2]
        sessions = []
        for _ in range(40):  # until the other front holds three, and this one one more
            sessions.append(post(None))
            if sum(1 for s in sessions if s[2] != home) >= 3 and any(s[2] == home for s in sessions):
                break
        assert {s[2] for s in sessions} == {0, 1}, sessions
        frag = "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"
        restart = "a=ice-ufrag:newU\r\na=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n" + frag
        for url, etag, front in sessions:
            call = pinned_call if front != home else (lambda m, u, b="", h=None: http(m, u, b, h).status)
            assert call("PATCH", url, frag, {"Content-Type": FRAG, "If-Match": etag}) == 204
            assert call("PATCH", url, frag, {"Content-Type": FRAG, "If-Match": '"stale"'}) == 412
            assert call("PATCH", url, restart, {"Content-Type": FRAG, "If-Match": "*"}) == 422
            assert call("PATCH", url, frag, {"Content-Type": "text/plain"}) == 415
            assert call("DELETE", url) == 200
            assert call("DELETE", url) == 404
        r = http("PATCH", sessions[0][0], restart, {"Content-Type": FRAG})
        assert r.status == 404
    finally:
        pinned.close()
    deadline = time.monotonic() + 5
    while len(_consumers(hub, path)) > 1:  # the pinned connection's own session remains
        assert time.monotonic() < deadline, _consumers(hub, path)
        time.sleep(0.2)


def test_whep_and_whip_refusals(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/here", "h264")
    url = f"{hub.base}/streams/live/here/whep"
    bad = http("POST", url, "v=0\r\nthis is no offer\r\n", sdp_headers())
    assert bad.status == 400 and "error" in json.loads(bad.body)
    assert http("POST", f"{hub.base}/streams/live/nobody/whep", AIORTC_OFFER, sdp_headers()).status == 404
    assert http("POST", url, AIORTC_OFFER, sdp_headers(ctype="text/plain")).status == 415
    opts = http("OPTIONS", url, headers={"Origin": "http://elsewhere", "Access-Control-Request-Method": "POST"})
    assert opts.status == 204 and opts.headers["accept-post"] == "application/sdp"
    assert "POST" in opts.headers["access-control-allow-methods"]
    assert "Location" in opts.headers["access-control-expose-headers"]
    assert "link" not in opts.headers  # no ICE servers configured
    # No session of that id anywhere.
    assert http("DELETE", url + "/AAAAAAAAAAAAAAAAAAAAAA").status == 404
    # WHIP: an offer that sends nothing, and no offer at all.
    whip_url = f"{hub.base}/streams/live/new/whip"
    assert http("POST", whip_url, AIORTC_OFFER, sdp_headers()).status == 400
    assert http("POST", whip_url, "garbage", sdp_headers()).status == 400
    # GET of a signalling URL is a media request: not found.
    assert http("GET", url).status == 404


def test_unconnected_whep_sessions_per_client_are_bounded(hub_factory: Callable[..., HubServer],
                                                          push: Callable[..., Pusher]) -> None:
    """Offers that never connect hold a session each: one client address may
    hold MAX_PENDING_PER_CLIENT of them in a front, then 503 at once; other
    clients are served, and a session that goes frees its place."""
    from hub.api.webrtc.service import MAX_PENDING_PER_CLIENT

    srv = hub_factory("--shards", "1", "--fronts", "1")
    path = "/live/pending"
    push(path, "h264", srv=srv)
    url = f"{srv.base}/streams{path}/whep"
    held = []
    for _ in range(MAX_PENDING_PER_CLIENT):
        r = http("POST", url, AIORTC_OFFER, sdp_headers())
        assert r.status == 201, r.text
        held.append(r.headers["location"])
    refused = http("POST", url, AIORTC_OFFER, sdp_headers())
    assert refused.status == 503
    other = http("POST", url, AIORTC_OFFER, sdp_headers(), source="127.0.0.2")
    assert other.status == 201, other.text
    assert len(_consumers(srv, path)) == MAX_PENDING_PER_CLIENT + 1  # the refusal added nobody
    assert http("DELETE", srv.base + held[0]).status == 200
    again = http("POST", url, AIORTC_OFFER, sdp_headers())
    assert again.status == 201, again.text


def test_b_frames_are_refused_with_a_clear_error(hub: HubServer, push: Callable[..., Pusher]) -> None:
    push("/live/bframes", "h264_bframes")
    time.sleep(1.5)  # a GOP with B-frames in the ring
    # Each POST is a new connection, landing on either front: the first one
    # on a front opens its view, which has not been woken yet (the check
    # reads the ring up to its head, not up to what the view has read).
    for _ in range(6):
        r = http("POST", f"{hub.base}/streams/live/bframes/whep", AIORTC_OFFER, sdp_headers())
        assert r.status == 422, r.text
        assert "B-frames" in json.loads(r.body)["error"]


def test_a_player_that_vanishes_is_reaped(hub_factory: Callable[..., HubServer],
                                          push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "1", env={"HUB_WEBRTC_CONSENT_TIMEOUT": "2",
                                                             "HUB_WEBRTC_ICE_SERVERS": "stun:stun.example.net:3478"})
    path = "/live/vanish"
    push(path, "h264", srv=srv)
    link = '<stun:stun.example.net:3478>; rel="ice-server"'
    assert http("OPTIONS", f"{srv.base}/streams{path}/whep").headers["link"] == link

    async def run() -> None:
        p = await whep(srv.base, path)
        try:
            assert p.reply.status == 201, p.reply.text
            assert p.reply.headers["link"] == link
            await p.video_frames(10)
            assert len(await asyncio.to_thread(_consumers, srv, path)) == 1
            # The player goes away without a word: its ICE stops, nothing is sent.
            ice = p.pc.getTransceivers()[0].receiver.transport.transport
            await ice.stop()
            t0 = time.monotonic()
            await _until(lambda: not _consumers(srv, path), 8, "the silent player was reaped")
            assert time.monotonic() - t0 < 6
            rt = await asyncio.to_thread(srv.get_json, "/api/v1/runtime")
            assert rt["webrtc"] == {"total": 1, "active": 0}
        finally:
            await p.close()

    asyncio.run(asyncio.wait_for(run(), 60))
    assert "consent expired" in srv.log()


def test_whip_publisher_plays_over_rtsp_flv_and_whep(hub: HubServer) -> None:
    path = "/live/fromwhip"

    async def run() -> None:
        pub = await whip(hub.base, path)
        try:
            assert pub.reply.status == 201, pub.reply.text
            assert pub.reply.headers["location"].startswith(f"/streams{path}/whip/")
            await _until(lambda: http("GET", f"{hub.base}/api/v1/streams{path}?token={hub.token()}").status == 200,
                         10, "the WHIP stream is live")
            await asyncio.sleep(1.0)  # a keyframe (asked for with a PLI) in the ring
            port = hub.port
            rtsp = await asyncio.to_thread(play, f"rtsp://127.0.0.1:{port}{path}", 30, 20, {"rtsp_transport": "tcp"})
            assert (rtsp.video_codec, rtsp.audio_codec) == ("h264", "opus"), rtsp.log
            assert rtsp.video_frames >= 30 and rtsp.audio_frames > 0 and rtsp.advancing()
            assert (rtsp.width, rtsp.height) == (640, 480)
            flv = await asyncio.to_thread(play, f"{hub.base}/streams{path}.flv", 30, 20)
            assert flv.video_codec == "h264" and flv.video_frames >= 30 and flv.advancing()
            assert (flv.width, flv.height) == (640, 480)
            # aiortc makes a keyframe only when asked: the shard's PLIs every 2 s
            # keep coming; its receiver reports give the publisher a round trip.
            assert await asyncio.to_thread(_keyframes, f"{hub.base}/streams{path}.flv", 5.0) >= 3
            stats = await pub.pc.getSenders()[0].getStats()
            (remote,) = [s for s in stats.values() if s.type == "remote-inbound-rtp"]
            assert remote.packetsLost == 0 and remote.roundTripTime is not None and remote.roundTripTime < 1
            # WebRTC in, WebRTC out.
            p = await whep(hub.base, path)
            try:
                assert p.reply.status == 201, p.reply.text
                frames = await p.video_frames(20)
                assert {(f.width, f.height) for f in frames} == {(640, 480)} and _advancing(frames)
            finally:
                await p.close()
            info = await asyncio.to_thread(hub.get_json, f"/api/v1/streams{path}")
            assert info["video"]["codec"] == "H264" and info["audio"]["codec"] == "OPUS"
            rt = await asyncio.to_thread(hub.get_json, "/api/v1/runtime")
            assert rt["webrtc"]["active"] >= 1  # the publisher, in its shard
            assert await asyncio.to_thread(_gauge, hub.port, "ipchub_publishers", "whip") == 1
            # DELETE on the session ends the stream.
            assert (await ahttp("DELETE", pub.location)).status == 200
            await _until(lambda: http("GET", f"{hub.base}/api/v1/streams{path}?token={hub.token()}").status == 404,
                         5, "the stream ended")
        finally:
            await pub.close()

    asyncio.run(asyncio.wait_for(run(), 120))


def test_tokens_for_whep_and_whip(hub_factory: Callable[..., HubServer]) -> None:
    srv = hub_factory("--shards", "2", "--fronts", "1", "--auth")
    admin = srv.token()
    r = http("POST", f"{srv.base}/api/v1/users?token={admin}",
             json.dumps({"name": "viewer", "password": "viewer-pw", "pull": "/live/*", "push": ""}).encode())
    assert r.status == 200, r.text
    viewer = srv.token("viewer", "viewer-pw")
    path = "/live/secure"

    async def run() -> None:
        assert (await whip(srv.base, path)).reply.status == 401
        denied = await whip(srv.base, path, token=viewer)
        assert denied.reply.status == 403
        await denied.close()
        pub = await whip(srv.base, path, token=admin)
        try:
            assert pub.reply.status == 201, pub.reply.text
            await _until(lambda: http("GET", f"{srv.base}/api/v1/streams{path}?token={admin}").status == 200,
                         10, "the WHIP stream is live")
            url = f"{srv.base}/streams{path}/whep"
            assert (await ahttp("POST", url, AIORTC_OFFER, sdp_headers())).status == 401
            assert (await ahttp("POST", url, AIORTC_OFFER, sdp_headers("not-a-token"))).status == 401
            assert (await ahttp("POST", f"{srv.base}/streams/other/whep", AIORTC_OFFER,
                                sdp_headers(viewer))).status == 403
            assert (await ahttp("POST", f"{url}?token={viewer}", AIORTC_OFFER, sdp_headers())).status == 201
            p = await whep(srv.base, path, token=viewer)
            try:
                assert p.reply.status == 201, p.reply.text
                frames = await p.video_frames(10)
                assert frames[0].width == 640
            finally:
                await p.close()
        finally:
            await pub.close()

    asyncio.run(asyncio.wait_for(run(), 90))


def test_whep_sessions_take_the_players_limit(hub_factory: Callable[..., HubServer],
                                              push: Callable[..., Pusher]) -> None:
    srv = hub_factory("--shards", "1", "--fronts", "2", "--max-players-per-stream", "1")
    path = "/live/limited"
    push(path, "h264", srv=srv)
    url = f"{srv.base}/streams{path}/whep"
    first = http("POST", url, AIORTC_OFFER, sdp_headers())
    assert first.status == 201, first.text
    refused = http("POST", url, AIORTC_OFFER, sdp_headers())
    assert refused.status == 503  # LimitReached
    assert http("DELETE", srv.base + first.headers["location"]).status == 200
    deadline = time.monotonic() + 5
    while (r := http("POST", url, AIORTC_OFFER, sdp_headers())).status != 201:  # the grant came back
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)
