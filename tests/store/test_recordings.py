"""Recording rules: validation, matching, persistence, the wire; recording file names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hub.errors import BadRequest
from hub.store.persist import StoreFileError
from hub.store.recordings import (MAX_RULES, RecordRule, RecordTable, file_name, parse_bytes, parse_name,
                                  parse_seconds, path_folder, rule_from_obj)

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def test_rule_defaults_and_every_field() -> None:
    assert rule_from_obj({"pattern": "Cams/"}) == RecordRule("/cams/", "fmp4", 60.0, 0.0, 0, "api")
    rule = rule_from_obj({"pattern": "/cam/door", "format": "fmp4", "segment": "2m",
                          "retention": {"max_age": "7d", "max_bytes": "1.5GiB"}}, "config")
    assert rule == RecordRule("/cam/door", "fmp4", 120.0, 7 * 86400.0, 3 << 29, "config")
    assert rule.public_dict() == {"pattern": "/cam/door", "format": "fmp4", "segment": 120.0,
                                  "retention": {"max_age": 604800.0, "max_bytes": 1610612736},
                                  "source": "config"}
    assert not rule.is_folder and rule_from_obj({"pattern": "/"}).is_folder


@pytest.mark.parametrize("obj, message", [
    ({}, "must not be empty"),
    ({"pattern": " "}, "must not be empty"),
    ({"pattern": "/a\x00"}, "control characters"),
    ({"pattern": "/" + "a" * 1024}, "longer than"),
    ({"pattern": "/a", "format": "ts"}, "format must be"),
    ({"pattern": "/a", "segment": 0.5}, "out of range"),
    ({"pattern": "/a", "segment": "1y"}, "like 12h"),
    ({"pattern": "/a", "segment": True}, "expected seconds"),
    ({"pattern": "/a", "retention": []}, "retention must be an object"),
    ({"pattern": "/a", "retention": {"max_files": 3}}, "unknown key 'max_files'"),
    ({"pattern": "/a", "retention": {"max_bytes": "12 apples"}}, "like 10GB"),
    ({"pattern": "/a", "retention": {"max_bytes": -1}}, "out of range"),
    ({"pattern": "/a", "retention": {"max_age": float("nan")}}, "out of range"),
    ({"pattern": "/a", "keepalive": True}, "unknown key 'keepalive'"),
    ([], "must be a JSON object"),
])
def test_bad_rules_are_refused_with_a_reason(obj: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        rule_from_obj(obj)


def test_durations_and_sizes() -> None:
    assert [parse_seconds("k", v, 0, 1e9) for v in (5, 2.5, "90", "90s", "15m", "12h", "7d", "2w", " 1.5 h ")] == \
        [5, 2.5, 90, 90, 900, 43200, 604800, 1209600, 5400]
    assert [parse_bytes("k", v) for v in (0, 1024.0, "500", "500K", "10MB", "10mib", "2G", "1T")] == \
        [0, 1024, 500, 500 << 10, 10 << 20, 10 << 20, 2 << 30, 1 << 40]
    with pytest.raises(BadRequest):
        parse_bytes("k", 1.5)


def test_match_exact_then_longest_folder_then_root() -> None:
    table = RecordTable([RecordRule("/", segment=10), RecordRule("/cams/"), RecordRule("/cams/lobby/"),
                         RecordRule("/cams/door")])
    assert table.match("/cams/door").pattern == "/cams/door"
    assert table.match("/CAMS/door/../lobby/2").pattern == "/cams/lobby/"
    assert table.match("/cams/yard").pattern == "/cams/"
    assert table.match("/other").pattern == "/"
    assert RecordTable([RecordRule("/cams/")]).match("/camsx") is None


def test_api_rules_persist_and_configured_ones_stay(tmp_path: Path) -> None:
    path = str(tmp_path / "recordings.json")
    configured = [rule_from_obj({"pattern": "/cfg/"}, "config")]
    table = RecordTable.load(path, configured)
    assert [r.pattern for r in table] == ["/cfg/"]
    table.upsert({"pattern": "/api/", "segment": 30, "retention": {"max_age": "1d"}})
    table.upsert({"pattern": "/cfg/", "segment": 5})  # an API rule replaces a configured one
    table.save(path)
    saved = json.loads(Path(path).read_text())
    assert saved == [{"pattern": "/api/", "format": "fmp4", "segment": 30.0,
                      "retention": {"max_age": 86400.0, "max_bytes": 0}},
                     {"pattern": "/cfg/", "format": "fmp4", "segment": 5.0,
                      "retention": {"max_age": 0.0, "max_bytes": 0}}]
    again = RecordTable.load(path, configured)
    assert list(again) == list(table)
    assert again.delete("/cfg") is False and again.delete("/cfg/") is True
    assert again.get("/cfg/") is None
    with pytest.raises(BadRequest, match="configuration file"):
        RecordTable([configured[0]]).delete("/cfg/")


def test_a_bad_file_entry_is_skipped_a_bad_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "recordings.json"
    path.write_text(json.dumps([{"pattern": "/ok/"}, {"pattern": "/bad/", "segment": 0}]))
    table = RecordTable.load(str(path))
    assert [r.pattern for r in table] == ["/ok/"] and table.skipped == ["rule #1: segment: 0 s is out of range 1..3600"]
    path.write_text("{}")
    with pytest.raises(StoreFileError):
        RecordTable.load(str(path))


def test_rules_are_bounded() -> None:
    table = RecordTable(RecordRule(f"/p{i}") for i in range(MAX_RULES))
    with pytest.raises(BadRequest, match="at most"):
        table.upsert({"pattern": "/one-more"})
    table.upsert({"pattern": "/p0", "segment": 2})  # replacing one is fine
    assert len(table) == MAX_RULES


def test_wire_round_trip() -> None:
    table = RecordTable([RecordRule("/a/", "fmp4", 4.0, 60.0, 1000, "config"), RecordRule("/b")])
    assert list(RecordTable.from_wire(table.to_wire())) == list(table)
    with pytest.raises(BadRequest):
        RecordTable.from_wire({"v": 99, "rules": []})


def test_file_names_and_their_order() -> None:
    assert file_name(T0) == "2023-11-14_22-13-20.mp4" and file_name(T0 + 0.999, 2) == "2023-11-14_22-13-20-2.mp4"
    assert parse_name("2023-11-14_22-13-20.mp4") == (T0, 0)
    assert parse_name("2023-11-14_22-13-20-2.mp4") == (T0, 2)
    for bad in ("2023-11-14_22-13-20.mp4.tmp", "2023-13-14_22-13-20.mp4", "x.mp4", "2023-11-14_22-13-20-12345.mp4"):
        assert parse_name(bad) is None, bad
    names = [file_name(T0, 1), file_name(T0 + 1), file_name(T0), file_name(T0 - 5)]
    assert sorted(names, key=lambda n: parse_name(n) or (0, 0)) == [names[3], names[2], names[0], names[1]]
    assert path_folder(Path("/r"), "/Cams/../cams/door/") == Path("/r/cams/door")


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False), st.integers(0, 9999))
def test_names_give_their_second_back(wall: float, n: int) -> None:
    assert parse_name(file_name(wall, n)) == (float(int(wall)), n)
