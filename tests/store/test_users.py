from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import msgpack
import pytest

from hub.auth.passwords import is_scrypt
from hub.errors import BadRequest, NotFound
from hub.store.persist import StoreFileError
from hub.store.users import UserTable, first_start, public_dict

ADMIN = {"name": "admin", "admin": True, "push": "*", "pull": "*"}
USER1 = {"name": "user1", "push": "/live/*", "pull": "/live/single"}

# The shape of the reference's users.json (plain password, and one in its MD5
# mode: md5sum of "pw1"), with a name in upper case and an entry it let through.
REFERENCE_USERS = """[
  {"name": "admin", "password": "admin", "admin": true, "push": "*", "pull": "*"},
  {"name": "User1", "password": "6e6fdf956d04289354dcf1619e28fe77", "push": "/live/*", "pull": "/live/single"},
  {"name": "", "password": "x"}
]"""


@pytest.fixture
def table() -> UserTable:
    t = UserTable()
    t.upsert({"name": "admin", "password": "admin", "admin": True, "push": "*", "pull": "*"})
    t.upsert({"name": "user1", "password": "pw1", "admin": False, "push": "/live/*", "pull": "/live/single"})
    return t


def test_transcript_create_get_update(table: UserTable) -> None:
    assert table.get_public("admin") == ADMIN                      # transcript #31
    assert table.get_public("user1") == USER1                      # #34
    with pytest.raises(NotFound):
        table.get_public("nobody")                                 # #32
    # #35: update without update_password keeps pw1, takes the new rights
    table.upsert({"name": "user1", "password": "pw2", "push": "/live/*", "pull": "/live/*"})
    assert table.authenticate("user1", "pw2") is None
    assert table.authenticate("user1", "pw1") is not None
    assert table.get_public("user1")["pull"] == "/live/*"
    # #38: with update_password the password changes and tokens are revoked
    uv = table.get("user1").token_version  # type: ignore[union-attr]
    table.upsert({"name": "user1", "password": "pw2", "push": "/live/*", "pull": "/live/single"},
                 update_password=True)
    assert table.authenticate("user1", "pw1") is None
    u = table.authenticate("user1", "pw2")
    assert u is not None and u.token_version == uv + 1
    assert u.ha1 == "7168df7fe7ea968c816f54340f3c641f"  # printf 'user1:ipchub:pw2' | md5sum


def test_ha1_follows_password(table: UserTable) -> None:
    u = table.get("user1")
    assert u is not None
    assert u.ha1 == "3aeec4ace038a7f33857f00e0b9a747c"  # printf 'user1:ipchub:pw1' | md5sum


def test_names_are_canonical(table: UserTable) -> None:
    table.upsert({"name": "  Bob ", "password": "x"})
    assert table.get("BOB") is not None and table.get("bob").name == "bob"  # type: ignore[union-attr]
    assert table.authenticate("Bob", "x") is not None
    assert table.delete(" BOB")


def test_rights_checks(table: UserTable) -> None:
    u = table.get("user1")
    assert u is not None
    assert u.can_push("/live/a") and u.can_push("/LIVE/a/b") and not u.can_push("/other")
    assert u.can_pull("/live/single") and not u.can_pull("/live/test")
    a = table.upsert({"name": "root", "password": "x", "admin": True})
    assert (a.push, a.pull) == ("*", "*") and a.can_pull("/anything")
    nobody = table.upsert({"name": "guest", "password": "x"})
    assert not nobody.can_pull("/live/single") and public_dict(nobody) == {"name": "guest"}


@pytest.mark.parametrize("obj,update", [
    ({"name": "", "password": "x"}, False),                  # transcript #46
    ({"name": "   ", "password": "x"}, False),
    ({"password": "x"}, False),
    ({"name": 5, "password": "x"}, False),
    ({"name": "a:b", "password": "x"}, False),
    ({"name": "a/b", "password": "x"}, False),
    ({"name": "a b", "password": "x"}, False),
    ({"name": ".", "password": "x"}, False),                 # dot segments: no URL reaches them
    ({"name": "..", "password": "x"}, False),
    ({"name": " .. ", "password": "x"}, False),
    ({"name": "Admin", "admin": False}, False),              # the last admin keeps the right
    ({"name": "admin ", "admin": False, "password": "y"}, True),
    ({"name": "x" * 65, "password": "x"}, False),
    ({"name": "user2", "password": ""}, False),              # transcript #47
    ({"name": "user2"}, False),
    ({"name": "user2", "password": 123}, False),
    ({"name": "user2", "password": "x" * 1025}, False),
    ({"name": "user2", "password": "x", "push": "/a/*/b"}, False),
    ({"name": "user2", "password": "x", "pull": 7}, False),
    ({"name": "user2", "password": "x", "admin": "yes"}, False),
    ({"name": "user1", "password": ""}, True),
    ({"name": "user1"}, True),
])
def test_validation(table: UserTable, obj: dict[str, Any], update: bool) -> None:
    before = table.to_file_list()
    rev = table.revision
    with pytest.raises(BadRequest):
        table.upsert(obj, update_password=update)
    assert table.to_file_list() == before and table.revision == rev


def test_existing_user_update_needs_no_password(table: UserTable) -> None:
    table.upsert({"name": "user1", "admin": True})
    assert table.get_public("user1") == {"name": "user1", "admin": True, "push": "*", "pull": "*"}
    assert table.authenticate("user1", "pw1") is not None
    with pytest.raises(BadRequest):
        table.upsert([("name", "x")])  # type: ignore[arg-type]


def test_delete(table: UserTable) -> None:
    table.upsert({"name": "user2", "password": "pw", "push": "*", "pull": "*"})
    assert table.delete("user2") is True                           # #52
    assert table.delete("user2") is False                          # #53
    assert table.get("user2") is None                              # #54
    with pytest.raises(NotFound):
        table.get_public("user2")


def test_dotted_names_that_are_segments_are_fine(table: UserTable) -> None:
    for name in ("...", "a.b", ".hidden", "x.."):
        assert table.upsert({"name": name, "password": "x"}).name == name
        assert table.delete(name)


def test_the_last_admin_stays(table: UserTable) -> None:
    rev = table.revision
    with pytest.raises(BadRequest, match="last admin"):
        table.delete(" ADMIN")
    assert table.get_public("admin") == ADMIN and table.revision == rev
    # Upserts that keep the right are fine, whatever the case and spaces.
    table.upsert({"name": "ADMIN ", "admin": True, "pull": "/live/*"})
    assert table.get_public("admin") == {**ADMIN, "pull": "/live/*"}
    # With a second admin either may lose the right; then the other is last.
    table.upsert({"name": "root", "password": "x", "admin": True})
    table.upsert({"name": "admin", "admin": False})
    with pytest.raises(BadRequest, match="last admin"):
        table.upsert({"name": "root", "admin": False})
    with pytest.raises(BadRequest, match="last admin"):
        table.delete("root")
    assert table.delete("admin") and table.get("root") is not None
    # A table without any admin (an old file) does not block other changes.
    bare = UserTable()
    bare.upsert({"name": "guest", "password": "x"})
    assert bare.delete("guest")


def test_paging_like_transcript(table: UserTable) -> None:
    table.upsert({"name": "user2", "password": "pw", "push": "*", "pull": "*"})
    user2 = {"name": "user2", "push": "*", "pull": "*"}
    assert table.page(1) == (3, "admin", [ADMIN])                  # #49
    assert table.page(1, "admin") == (3, "user1", [USER1])         # #50
    assert table.page(1, "user1") == (3, "user2", [user2])
    assert table.page(1, "user2") == (3, "user2", [])              # empty page echoes
    assert table.page(20, "zzz") == (3, "zzz", [])
    assert table.page() == (3, "user2", [ADMIN, USER1, user2])
    assert table.page(0) == table.page(20)
    assert table.page(2, "b") == (3, "user2", [USER1, user2])
    table.delete("user2")
    assert table.page() == (2, "user1", [ADMIN, USER1])            # #55


def test_load_reference_format(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text(REFERENCE_USERS)
    t = UserTable.load(str(path))
    assert t.migrated and len(t.skipped) == 1 and "#2" in t.skipped[0]
    assert t.page() == (2, "user1", [ADMIN, USER1])
    admin = t.get("admin")
    assert admin is not None and is_scrypt(admin.password_hash)
    assert admin.ha1 == "5173c1098f2c4e3e41091ac1376e503b"
    assert t.authenticate("admin", "admin") is not None
    u1 = t.get("user1")
    assert u1 is not None and u1.password_hash == "6e6fdf956d04289354dcf1619e28fe77" and u1.ha1 == ""
    assert t.authenticate("user1", "pw1") is not None
    assert t.authenticate("user1", "6e6fdf956d04289354dcf1619e28fe77") is None
    # the first successful login upgrades the MD5 to scrypt and fills the HA1
    assert t.upgrade_password("user1", "pw1")
    assert is_scrypt(u1.password_hash) and u1.ha1 == "3aeec4ace038a7f33857f00e0b9a747c"
    assert not t.upgrade_password("user1", "pw1")


def test_save_writes_our_format_and_reloads(tmp_path: Path) -> None:
    src = tmp_path / "ref.json"
    src.write_text(REFERENCE_USERS)
    t = UserTable.load(str(src))
    out = tmp_path / "users.json"
    t.save(str(out))
    assert not t.migrated
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    raw = json.loads(out.read_text())
    assert [e["name"] for e in raw] == ["admin", "user1"]
    assert all("password" not in e for e in raw)
    assert set(raw[0]) == {"name", "password_hash", "ha1", "admin", "push", "pull",
                           "token_version", "sessions"}
    assert '"admin": true' in out.read_text() and '"password": "admin"' not in out.read_text()
    again = UserTable.load(str(out))
    assert not again.migrated and again.skipped == []
    assert again.to_file_list() == t.to_file_list()
    assert again.authenticate("admin", "admin") is not None


@pytest.mark.parametrize("content", ['{"name": "admin"}', '"x"', "[1, 2"])
def test_bad_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(StoreFileError, match="users.json"):
        UserTable.load(str(path))


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert len(UserTable.load(str(tmp_path / "none.json"))) == 0


def test_wire_round_trip_through_msgpack(table: UserTable) -> None:
    wire = table.to_wire()

    def plain(v: object) -> None:
        assert isinstance(v, (str, int, bool, bytes, list, dict)), type(v)
        if isinstance(v, list):
            for x in v:
                plain(x)
        if isinstance(v, dict):
            for k, x in v.items():
                plain(k)
                plain(x)

    plain(wire)
    copy = UserTable.from_wire(msgpack.unpackb(msgpack.packb(wire)))
    assert copy.to_file_list() == table.to_file_list()
    assert copy.revision == table.revision
    assert copy.authenticate("user1", "pw1") is not None
    assert copy.get("user1").can_push("/live/x")  # type: ignore[union-attr]
    with pytest.raises(BadRequest):
        UserTable.from_wire({"v": 99, "users": []})


def test_first_start_with_given_password(tmp_path: Path) -> None:
    t, generated = first_start(str(tmp_path), "s3cret")
    assert generated is None
    assert t.page() == (1, "admin", [ADMIN])
    assert t.authenticate("admin", "s3cret") is not None
    path = tmp_path / "users.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    t2, gen2 = first_start(str(tmp_path), "other")         # an existing file wins
    assert gen2 is None and t2.authenticate("admin", "s3cret") is not None


def test_first_start_generates_password(tmp_path: Path) -> None:
    t, generated = first_start(str(tmp_path / "data"), None, users_file="u.json")
    assert generated and len(generated) >= 12
    assert t.authenticate("admin", generated) is not None
    assert UserTable.load(str(tmp_path / "data" / "u.json")).authenticate("admin", generated)


def test_a_copy_compiles_each_rights_pattern_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every change (a login, a refresh) copies the whole table on the
    supervisor's loop (hub.store.backend): at 1000 users with full-length
    rights that took 2.1 s, each pattern compiled twice and each mask's
    characters walked twice; now 0.6 s."""
    from hub.auth import rights

    t = UserTable()
    for i in range(10):
        t.upsert({"name": f"u{i}", "password": "pw", "push": f"/a{i}/*", "pull": f"/b{i}/+/c"})
    compiled: list[str] = []
    real = rights.RightsPattern.compile.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, text: str) -> Any:
        compiled.append(text)
        return real(cls, text)

    monkeypatch.setattr(rights.RightsPattern, "compile", classmethod(counted))
    copy = UserTable.from_file_list(t.to_file_list())
    assert copy.to_file_list() == t.to_file_list()
    assert len(compiled) == 2 * len(t), compiled
    assert copy.get("u3") is not None and copy.get("u3").can_pull("/b3/x/c")  # type: ignore[union-attr]
    # A bad pattern in a file is still skipped, with its reason.
    bad = UserTable.from_file_list([{**t.to_file_list()[0], "pull": "/a/*/b"}])
    assert len(bad) == 0 and len(bad.skipped) == 1 and "/a/*/b" in bad.skipped[0], bad.skipped
