"""HLS viewers are (stream, address, token) seen lately: a client making up
tokens (or sending huge ones) must not grow the table past its bound."""

from __future__ import annotations

import time

from hub.api.play import hls_viewers as hv


def test_the_table_stays_bounded_under_a_flood_of_new_tokens(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(hv, "MAX_VIEWERS", 50)
    table = hv.HlsViewers()
    table.seen("/live/x", "127.0.0.1:4000", "real", 0, 10)
    for i in range(500):
        table.seen("/live/x", "127.0.0.1:5000", f"made-up-{i}" + "x" * 4096, 0, 10)
    assert len(table._viewers) == 50
    assert table.sessions == 50
    # The viewer seen first is still tracked, and counts on.
    table.seen("/live/x", "127.0.0.1:4001", "real", 0, 5)
    real = [v for v in table.active() if v.addr == "127.0.0.1:4000"]
    assert len(real) == 1 and real[0].outbytes == 15
    # Idle viewers expire, and new ones are tracked again.
    for v in table._viewers.values():
        v.last_seen = time.monotonic() - hv.IDLE - 1
    table.seen("/live/x", "127.0.0.1:6000", "late", 0, 1)
    assert [v.addr for v in table.active()] == ["127.0.0.1:6000"]


def test_no_token_bytes_are_kept() -> None:
    table = hv.HlsViewers()
    table.seen("/live/x", "127.0.0.1:4000", "t" * 100_000, 0, 1)
    (key,) = table._viewers
    assert all(not isinstance(k, str) or len(k) < 100 for k in key)
