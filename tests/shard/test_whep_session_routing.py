"""A WHEP session's DELETE or PATCH that reaches a front not holding it
goes through the stream's shard to the front the session's id names, and
to that one only: the shard asked every front for any id, so one request
with a made-up id cost a call to each of them (N fronts, 2 s timeouts).
Ids carry a tag keyed with what every front holds, so a made-up id naming
another front (`1-...`) is answered where it arrives, costing no call."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from hub.api.webrtc.service import ID_KEY_LABEL, front_of, session_id
from hub.auth.tokens import TokenService
from hub.shard.main import Shard


class FakeFront:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked = 0

    async def call(self, msg: Any, timeout: float) -> str | None:
        self.asked += 1
        return self.answer


def _ask(shard: Any, asker: FakeFront, sid: str, **extra: Any) -> str | None:
    args = {"id": sid, "path": "/live/a", "op": "delete", "if_match": None, **extra}
    return asyncio.run(Shard.on_webrtc_session(shard, asker, args))  # type: ignore[arg-type]


KEY = TokenService(b"k" * 32).derive(ID_KEY_LABEL)


def test_ids_name_their_front() -> None:
    sid = session_id(3, KEY)
    assert sid.startswith("3-") and len(sid) >= 24 and front_of(sid, KEY) == 3
    assert session_id(3, KEY) != sid  # 128 random bits each
    for made_up in ("", "abc", "-x", "3-", "x-abc", "12345-abc"):
        assert front_of(made_up, KEY) is None, made_up


def test_an_id_no_front_made_names_none() -> None:
    """Made up, moved to another front, or tagged with another key: None,
    so the front it reaches answers 404 without asking anyone."""
    sid = session_id(3, KEY)
    nonce, tag = sid[2:].rsplit(".", 1)
    other = TokenService(b"o" * 32).derive(ID_KEY_LABEL)
    for forged in ("1-" + "A" * 22, "3-" + nonce, "2-" + sid[2:], f"3-{nonce}x.{tag}", f"3-{nonce}.{tag[:-1]}",
                   f"3-{nonce}.{tag[:-1]}é", session_id(3, other), "3-." + tag):
        assert front_of(forged, KEY) is None, forged
    assert front_of(sid, other) is None


def test_the_shard_asks_the_named_front_only() -> None:
    f0, f1, f2 = FakeFront(None), FakeFront(None), FakeFront("ok")
    shard = SimpleNamespace(fronts={f0, f1, f2}, front_index={f0: 0, f1: 1, f2: 2})
    assert _ask(shard, f0, "2-abc", front=2) == "ok"
    assert (f0.asked, f1.asked, f2.asked) == (0, 0, 1)
    # A front index no linked front has: nobody is asked.
    assert _ask(shard, f0, "7-abc", front=7) is None
    assert (f1.asked, f2.asked) == (0, 1)
    # A front that has not said which it is yet: all but the asker, as before.
    del shard.front_index[f1]
    assert _ask(shard, f0, "5-abc", front=5) == "ok"
    assert (f0.asked, f1.asked, f2.asked) == (0, 1, 2)
