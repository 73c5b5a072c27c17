"""The front's HLS pieces without a server: tokens in playlists, LL waits, byte ranges."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hub.errors import NotFound, ServiceUnavailable
from hub.ipc import messages as M
from hub.ipc.methods import Ask, Tell
from hub.api.play import hls_live
from hub.api.play.hls import FMP4_FILE, with_query
from hub.api.play.hls_live import HlsLive, LiveHls
from hub.api.rest.recording_files import ByteRange, Listed, overlapping, parse_range
from hub.media.hls import LlState

STATE = LlState(4, 10, 3, 0.2, 2, False)


def test_token_goes_on_every_uri_of_a_playlist() -> None:
    text = ('#EXTM3U\n#EXT-X-MAP:URI="/s/a/fmp4/init0.mp4"\n#EXT-X-PART:DURATION=0.200,URI="/s/a/fmp4/part5.m4s",'
            'INDEPENDENT=YES\n#EXTINF:2.000,\n/s/a/fmp4/4.m4s\n'
            '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="/s/a/fmp4/part6.m4s"\n')
    assert with_query(text, {"token": "a b&c"}) == (
        '#EXTM3U\n#EXT-X-MAP:URI="/s/a/fmp4/init0.mp4?token=a+b%26c"\n'
        '#EXT-X-PART:DURATION=0.200,URI="/s/a/fmp4/part5.m4s?token=a+b%26c",INDEPENDENT=YES\n'
        '#EXTINF:2.000,\n/s/a/fmp4/4.m4s?token=a+b%26c\n'
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="/s/a/fmp4/part6.m4s?token=a+b%26c"\n')
    assert with_query(text, {}) == text


@pytest.mark.parametrize("rest, ok", [
    ("/live/cam/fmp4/init0.mp4", True), ("/live/cam/fmp4/12.m4s", True), ("/live/cam/fmp4/part123.m4s", True),
    ("/live/cam/fmp4/x.m4s", False), ("/fmp4/1.m4s", False), ("/live/cam/ll/1.m4s", False),
    ("/live/cam/fmp4/part1.mp4", False), ("/live/cam/fmp4/" + "9" * 19 + ".m4s", False),
])
def test_fmp4_file_names(rest: str, ok: bool) -> None:
    m = FMP4_FILE.match(rest)
    assert bool(m) is ok
    if m:
        assert m.group("path") == "/live/cam"


class FakeShards:
    """The shard side of `HlsLive`: answers hls_open, records notices."""

    def __init__(self) -> None:
        self.opens = 0
        self.notices: list[tuple[str, str, dict[str, Any]]] = []

    async def request(self, path: str, msg: Ask[Any], timeout: float = 5.0) -> Any:
        assert msg[0] is M.HLS_OPEN
        self.opens += 1
        return {"folder": "/tmp/x", "st": [4, 10, 3, 0.2, 2, False], "n": 53}

    def notify(self, path: str, msg: Tell) -> None:
        self.notices.append((path, msg[0].name, msg[1]))


def test_live_entry_is_opened_once_then_kept_by_notices() -> None:
    async def run() -> None:
        shards = FakeShards()
        live = HlsLive(shards)  # type: ignore[arg-type]
        a = await live.get("/a")
        assert (a.state, a.next_part, a.folder) == (STATE, 53, Path("/tmp/x"))
        assert await live.get("/a") is a and shards.opens == 1
        live.on_part({"p": "/a", "st": [4, 10, 4, 0.2, 2, False], "n": 54})
        assert a.state.open_parts == 4 and a.next_part == 54
        live.on_part({"p": "/a", "st": [4, 10, 3, 0.2, 2, False], "n": 53})  # late: ignored
        assert a.next_part == 54
        a.updated -= hls_live.STALE + 1  # no notice for a while: asked again
        assert await live.get("/a") is a and shards.opens == 2
        a.touched -= hls_live.TOUCH_EVERY
        await live.get("/a")
        assert shards.notices == [("/a", "hls_touch", {"p": "/a"})]
        live.on_gone({"p": "/a"})
        assert a.gone and "/a" not in live.streams
        assert await live.get("/a") is not a and shards.opens == 3

    asyncio.run(run())


def test_waits_are_woken_bounded_and_timed() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        live = LiveHls("/a", Path("/x"), STATE, 53)
        waiter = loop.create_task(live.wait("1.2.3.4", lambda lv: lv.next_part > 54, 5.0))
        await asyncio.sleep(0)
        assert live.waiting == 1 and live.per_client["1.2.3.4"] == 1
        live.update(STATE, 54)  # not yet
        await asyncio.sleep(0)
        assert not waiter.done()
        live.update(STATE, 55)
        await asyncio.wait_for(waiter, 1)
        assert live.waiting == 0 and not live.per_client
        # Past the timeout: 503, nothing left held.
        with pytest.raises(ServiceUnavailable):
            await live.wait("1.2.3.4", lambda lv: False, 0.05)
        assert live.waiting == 0
        # Per client and per stream bounds: refused at once.
        held = [loop.create_task(live.wait("5.6.7.8", lambda lv: False, 5.0))
                for _ in range(hls_live.MAX_WAITING_PER_CLIENT)]
        await asyncio.sleep(0)
        with pytest.raises(ServiceUnavailable, match="too many"):
            await live.wait("5.6.7.8", lambda lv: False, 5.0)
        assert live.waiting == hls_live.MAX_WAITING_PER_CLIENT
        # An IPv6 client is its /64: another address of it is the same client.
        v6 = [loop.create_task(live.wait(f"2001:db8:0:9::{i:x}", lambda lv: False, 5.0))
              for i in range(hls_live.MAX_WAITING_PER_CLIENT)]
        held += v6
        await asyncio.sleep(0)
        with pytest.raises(ServiceUnavailable, match="too many"):
            await live.wait("2001:db8:0:9:ffff::1", lambda lv: False, 5.0)
        # The stream's HLS ends: every waiting request is answered 404.
        live.end()
        for t in held:
            with pytest.raises(NotFound):
                await t
        assert live.waiting == 0

    asyncio.run(run())


def test_ready_requests_never_wait_even_past_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hls_live, "MAX_WAITING_PER_STREAM", 0)

    async def run() -> None:
        live = LiveHls("/a", Path("/x"), STATE, 53)
        await live.wait("c", lambda lv: True, 1.0)
        with pytest.raises(ServiceUnavailable):
            await live.wait("c", lambda lv: False, 1.0)

    asyncio.run(run())


@pytest.mark.parametrize("header, want", [
    (None, None), ("bytes=0-99", ByteRange(0, 100)), ("bytes=100-", ByteRange(100, 1000)),
    ("bytes=990-2000", ByteRange(990, 1000)), ("bytes=-10", ByteRange(990, 1000)),
    ("bytes=-5000", ByteRange(0, 1000)), ("bytes=1000-", ByteRange(1000, 1000)),
    ("bytes=5000-6000", ByteRange(5000, 5000)), ("bytes=-0", ByteRange(1000, 1000)),
    ("bytes=0-1,5-6", None), ("items=0-1", None), ("bytes=5-1", None), ("bytes=a-b", None), ("bytes=7", None),
])
def test_byte_ranges(header: str | None, want: ByteRange | None) -> None:
    assert parse_range(header, 1000) == want


def test_files_overlapping_a_range() -> None:
    listed = [Listed(f"{t}.mp4", (t, 0), 1, 1) for t in (100.0, 104.0, 108.0, 200.0)]
    names = lambda a, b: [f.name for f in overlapping(listed, a, b)]  # noqa: E731
    assert names(101, 103) == ["100.0.mp4"]
    assert names(104.5, 109) == ["100.0.mp4", "104.0.mp4", "108.0.mp4"]  # a name may be a second early
    assert names(150, 160) == ["108.0.mp4"]
    assert names(300, 400) == ["200.0.mp4"]
    assert names(0, 100) == []
