"""What a front answers when asked for its players (`consumers`, the
stream listing's source): every stream's, or only the listed page's
streams, each player's details or only its id (to count). The views,
fan-outs and consumers are the real ones; the shard answers from real
rings (fakes.OneShard)."""

from __future__ import annotations

from hub.api.links import FRONT
from hub.api.play.consumer import Consumer
from hub.api.play.flv import FlvFanout
from hub.api.play.views import StreamView

from .fakes import FakeTransport, OneShard, Stream, make_front, run


def _join(view: StreamView) -> Consumer:
    c = Consumer(FakeTransport(), "FLV", "net=http-flv", on_close=view.drop_consumer)
    view.fanout("flv", lambda v: FlvFanout(v, ws=False)).join(c)
    return c


def test_a_front_answers_the_players_of_the_paths_asked_and_counts_without_detail() -> None:
    a, b, idle = Stream("/live/a", 1 << 8), Stream("/live/b", 2 << 8), Stream("/live/idle", 3 << 8)

    async def main() -> None:
        front = make_front(OneShard(a, b, idle))
        va, vb = await front.views.open(a.path), await front.views.open(b.path)
        await front.views.open(idle.path)
        pa = [_join(va) for _ in range(3)]
        pb = [_join(vb) for _ in range(2)]

        async def ask(args: dict[str, object]) -> dict[str, list[dict[str, object]]]:
            answer: dict[str, list[dict[str, object]]] = await FRONT.on_request(front, None, "consumers", args)
            return answer

        every = await ask({})
        assert sorted(every) == ["/live/a", "/live/b"]  # a stream nobody plays is not listed
        assert sorted(c["id"] for c in every["/live/a"]) == sorted(c.cid for c in pa)
        assert {"start_on", "packet_type", "flow"} <= set(every["/live/b"][0])
        page = await ask({"paths": ["/live/b", "/live/idle", "/live/gone"]})
        assert list(page) == ["/live/b"] and page["/live/b"] == every["/live/b"]
        counted = await ask({"paths": ["/live/a", "/live/b"], "detail": False})
        assert counted == {"/live/a": [{"id": c.cid} for c in pa], "/live/b": [{"id": c.cid} for c in pb]}
        assert await ask({"paths": []}) == {}
        for c in pa + pb:
            c.close()
        front.views.close()

    try:
        run(main())
    finally:
        for s in (a, b, idle):
            s.remove()
