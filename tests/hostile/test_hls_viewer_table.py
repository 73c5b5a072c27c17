"""HLS viewers are (stream, address, token) seen lately: a client making up
tokens (or sending huge ones) must not grow the table past its bound nor
shut other viewers out, and
a viewer's grant goes back when it goes idle, is kicked or the front drains."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.api.play import hls_viewers as hv


class Ticket:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def release(self) -> None:
        self.log.append(self.name)


def test_a_flood_of_new_tokens_keeps_the_table_bounded_and_shuts_no_one_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hv, "MAX_VIEWERS", 50)

    async def main() -> None:
        released: list[str] = []
        table = hv.HlsViewers()
        real = table.add("/live/x", "127.0.0.1:4000", "real", Ticket(released, "real"))
        for i in range(500):
            token = f"made-up-{i}" + "x" * 4096
            if i % 10 == 0:  # the real viewer keeps asking, from new ports of its address
                assert table.get("/live/x", f"127.0.0.1:{4001 + i}", "real") is real
                table.seen(real, 0, 1)
            assert table.get("/live/x", "127.0.0.1:5000", token) is None
            table.add("/live/x", "127.0.0.1:5000", token, Ticket(released, f"fake-{i}"))
        # Every new viewer was taken; the table stayed at its bound by ending
        # the viewers seen longest ago (their grants given back), never the
        # one that keeps asking.
        assert len(table._viewers) == 50 and table.sessions == 501 and table.evicted == 451
        assert released == [f"fake-{i}" for i in range(451)]
        assert table.get("/live/x", "127.0.0.1:9", "real") is real
        # A new viewer after the flood is taken too.
        late = table.add("/live/x", "127.0.0.1:6000", "late", None)
        assert table.get("/live/x", "127.0.0.1:6001", "late") is late and len(table._viewers) == 50
        # Idle viewers expire first, before anyone live is ended.
        for v in table._viewers.values():
            v.last_seen = time.monotonic() - hv.IDLE - 1
        table.seen(real, 0, 1)
        evicted = table.evicted
        table.add("/live/x", "127.0.0.1:7000", "later", None)
        assert table.evicted == evicted
        assert sorted(v.addr for v in table.active()) == ["127.0.0.1:4000", "127.0.0.1:7000"]
        table.close()

    asyncio.run(main())


def test_no_token_bytes_are_kept() -> None:
    async def main() -> None:
        table = hv.HlsViewers()
        table.add("/live/x", "127.0.0.1:4000", "t" * 100_000, None)
        (key,) = table._viewers
        assert all(not isinstance(k, str) or len(k) < 100 for k in key)
        table.close()

    asyncio.run(main())


def test_grants_go_back_when_idle_kicked_drained_or_added_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hv, "IDLE", 0.2)

    async def main() -> None:
        released: list[str] = []
        table = hv.HlsViewers()
        a = table.add("/live/x", "127.0.0.1:1", "", Ticket(released, "a"))
        # Two parallel first requests of one viewer: one viewer, one grant.
        assert table.add("/live/x", "127.0.0.1:2", "", Ticket(released, "a2")) is a and released == ["a2"]
        b = table.add("/live/x", "127.0.0.2:1", "", Ticket(released, "b"))
        c = table.add("/live/y", "127.0.0.3:1", "", Ticket(released, "c"))
        assert table.kick(b.cid) and released == ["a2", "b"]
        # The sweep (every IDLE / 2 while there are viewers) ends idle ones.
        for _ in range(4):
            await asyncio.sleep(0.1)
            table.seen(a, 0, 1)
        assert released == ["a2", "b", "c"] and table.get("/live/y", "127.0.0.3:1", "") is None
        table.release_grants()  # drain: a's grant back, a still served
        assert released == ["a2", "b", "c", "a"] and table.get("/live/x", "127.0.0.1:1", "") is a
        table.close()
        assert released == ["a2", "b", "c", "a"] and table._sweep is None
        del c

    asyncio.run(main())


def test_evictions_reach_the_supervisors_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.api.context import FrontContext
    from hub.api.metrics import front_report
    from hub.child import ChildArgs
    from hub.config import Config
    from hub.supervisor.metrics import FAMILIES
    from hub.supervisor.tally import Tally

    monkeypatch.setattr(hv, "MAX_VIEWERS", 2)

    async def main() -> dict[str, object]:
        front = FrontContext(ChildArgs("front", 0, -1, "test", "/tmp", Config()))
        for i in range(5):
            front.hls_viewers.add("/live/x", "127.0.0.1:5000", f"t{i}", None)
        report = front_report(front)
        front.hls_viewers.close()
        return report

    report = asyncio.run(main())
    tally = Tally(max_paths=10)
    tally.update((1, "child"), report, now=0)
    family = next(f for f in FAMILIES if f.name == "ipchub_hls_viewers_evicted")
    assert tally.counters[(family.key, ())] == 3
