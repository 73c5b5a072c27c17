"""The limits, decided by the supervisor for the whole tree
(hub.supervisor.admission)."""

from __future__ import annotations

import pytest

from hub.config import LimitsConfig
from hub.errors import Draining, LimitReached
from hub.supervisor.admission import PLAYER, PUBLISHER, Admission


def make(**limits: int) -> tuple[Admission, list[str]]:
    refused: list[str] = []
    cfg = LimitsConfig(**limits)
    return Admission(lambda: cfg, on_refusal=refused.append), refused


def test_players_per_stream_hold_across_fronts() -> None:
    adm, refused = make(players_per_stream=3)
    adm.admit("front-0", PLAYER, "/a", "10.0.0.1")
    adm.admit("front-1", PLAYER, "/a", "10.0.0.2")
    adm.admit("front-0", PLAYER, "/a", "10.0.0.3")
    with pytest.raises(LimitReached) as e:
        adm.admit("front-1", PLAYER, "/a", "10.0.0.4")
    assert e.value.rtsp_status == 453 and e.value.http_status == 503
    assert refused == ["players_per_stream"]
    adm.admit("front-1", PLAYER, "/b", "10.0.0.4")  # another stream
    adm.release("front-0", PLAYER, "/a", "10.0.0.1")
    adm.admit("front-1", PLAYER, "/a", "10.0.0.4")
    assert adm.players_by_path["/a"] == 3 and adm.players == 4


def test_total_players_publishers_and_per_address() -> None:
    adm, refused = make(players=2, publishers=1, connections_per_ip=2)
    adm.admit("front-0", PLAYER, "/a", "1.1.1.1")
    adm.admit("front-0", PLAYER, "/b", "2.2.2.2")
    with pytest.raises(LimitReached):
        adm.admit("front-1", PLAYER, "/c", "3.3.3.3")
    adm.admit("shard-0", PUBLISHER, "/x", "1.1.1.1")
    with pytest.raises(LimitReached):
        adm.admit("shard-1", PUBLISHER, "/y", "4.4.4.4")
    with pytest.raises(LimitReached):  # 1.1.1.1 has a player and a publisher
        adm.admit("shard-1", PUBLISHER, "/y", "1.1.1.1")
    assert refused == ["players", "publishers", "connections_per_ip"]


def test_a_refusal_changes_nothing() -> None:
    adm, _ = make(players_per_stream=1)
    adm.admit("front-0", PLAYER, "/a", "1.1.1.1")
    before = (adm.players, dict(adm.players_by_path), dict(adm.by_ip), {k: dict(v) for k, v in adm.held.items()})
    with pytest.raises(LimitReached):
        adm.admit("front-1", PLAYER, "/a", "2.2.2.2")
    assert before == (adm.players, dict(adm.players_by_path), dict(adm.by_ip),
                      {k: dict(v) for k, v in adm.held.items()})


def test_a_dead_holder_releases_what_it_held_and_stray_releases_are_ignored() -> None:
    adm, _ = make(players=2)
    adm.admit("front-0", PLAYER, "/a", "1.1.1.1")
    adm.admit("front-0", PLAYER, "/a", "1.1.1.1")
    adm.release("front-1", PLAYER, "/a", "1.1.1.1")  # not front-1's
    assert adm.players == 2
    adm.forget("front-0")
    assert adm.players == 0 and not adm.players_by_path and not adm.by_ip
    adm.release("front-0", PLAYER, "/a", "1.1.1.1")
    assert adm.players == 0


def test_unchecked_admissions_count_for_a_limit_set_later() -> None:
    """Without limits fronts only tell the supervisor; a reload that sets a
    limit then finds the right counts."""
    limits = LimitsConfig()
    adm = Admission(lambda: limits)
    for i in range(3):
        adm.admit("front-0", PLAYER, "/a", f"10.0.0.{i}", check=False)
    limits = LimitsConfig(players_per_stream=3)
    with pytest.raises(LimitReached):
        adm.admit("front-1", PLAYER, "/a", "10.0.0.9")


def test_draining_refuses_everything() -> None:
    adm, refused = make()
    adm.draining = True
    with pytest.raises(Draining):
        adm.admit("front-0", PLAYER, "/a", "1.1.1.1")
    assert refused == [] and adm.players == 0


def test_an_hls_viewer_is_one_player_whichever_fronts_hold_it() -> None:
    adm, refused = make(players_per_stream=2)
    adm.admit("front-0", PLAYER, "/a", "10.0.0.1", viewer="hls:v1")
    adm.admit("front-1", PLAYER, "/a", "10.0.0.1", viewer="hls:v1")  # its requests on the other front
    adm.admit("front-0", PLAYER, "/a", "10.0.0.1", viewer="hls:v1")  # asked twice (parallel requests)
    assert adm.players == 1 and adm.players_by_path["/a"] == 1 and adm.by_ip["10.0.0.1"] == 1
    adm.admit("front-1", PLAYER, "/a", "10.0.0.2")
    with pytest.raises(LimitReached):
        adm.admit("front-0", PLAYER, "/a", "10.0.0.3", viewer="hls:v2")
    assert refused == ["players_per_stream"] and "hls:v2" not in adm.viewers
    # A known viewer is let in even at the limit: it is already counted.
    adm.admit("front-1", PLAYER, "/a", "10.0.0.1", viewer="hls:v1")
    # Counted until its last holder lets go; a dead front lets go of all its holds.
    adm.release("front-0", PLAYER, "/a", "10.0.0.1", viewer="hls:v1")
    adm.forget("front-1")
    assert adm.players == 1 and adm.viewers == {"hls:v1": (("player", "/a", "10.0.0.1"), {"front-0": 1})}
    adm.release("front-0", PLAYER, "/a", "10.0.0.1", viewer="hls:v1")
    adm.release("front-0", PLAYER, "/a", "10.0.0.1", viewer="hls:v1")  # a stray one: ignored
    assert adm.players == 0 and adm.viewers == {} and adm.by_ip == {} and adm.players_by_path == {}


def test_an_ipv6_client_is_its_64_and_a_mapped_ipv4_one_its_address() -> None:
    """A host picks any address in its /64 (and a new one per connection):
    counted by full address, one IPv6 client would never reach the limit."""
    adm, refused = make(connections_per_ip=2)
    adm.admit("front-0", PLAYER, "/a", "2001:db8:0:7::1")
    adm.admit("front-1", PLAYER, "/a", "2001:db8:0:7:aaaa:bbbb:cccc:dddd")
    with pytest.raises(LimitReached):
        adm.admit("front-0", PLAYER, "/b", "2001:db8:0:7::ffff")
    adm.admit("front-0", PLAYER, "/b", "2001:db8:0:8::1")  # another /64
    adm.admit("front-0", PLAYER, "/a", "::ffff:10.0.0.1")
    adm.admit("front-1", PLAYER, "/a", "10.0.0.1")
    with pytest.raises(LimitReached):  # the same IPv4 client, however it is written
        adm.admit("front-1", PLAYER, "/b", "::ffff:10.0.0.1")
    adm.release("front-0", PLAYER, "/a", "2001:db8:0:7::1")
    adm.admit("front-0", PLAYER, "/c", "2001:db8:0:7::2")  # room again in that /64
    assert refused == ["connections_per_ip", "connections_per_ip"]
    assert adm.by_ip["2001:db8:0:7::/64"] == 2 and adm.by_ip["10.0.0.1"] == 2


def test_the_last_session_leaving_calls_on_empty_once_it_is_empty() -> None:
    """The drain waits on this instead of looking every so often."""
    adm, _ = make()
    emptied: list[tuple[int, int]] = []
    adm.on_empty = lambda: emptied.append((adm.players, adm.publishers))
    adm.admit("front-0", PLAYER, "/a", "1.1.1.1")
    adm.admit("shard-0", PUBLISHER, "/a", "1.1.1.2")
    adm.admit("front-1", PLAYER, "/a", "1.1.1.3", viewer="hls-1")
    adm.release("front-0", PLAYER, "/a", "1.1.1.1")
    adm.release("front-1", PLAYER, "/a", "1.1.1.3", viewer="hls-1")
    adm.release("front-0", PLAYER, "/a", "1.1.1.1")  # a stray release
    assert emptied == []
    adm.forget("shard-0")  # the publisher's shard died
    assert emptied == [(0, 0)]
