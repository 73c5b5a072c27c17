from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.auth.rights import RightsPattern, effective_rights, validate_rights
from hub.errors import BadRequest

MATRIX = [
    ("*", "/a", True), ("*", "/a/b/c", True), (" * ", "/x", True),
    ("/a", "/a", True), ("/a", "/A", True), ("/a", "a", True), ("/a", "/a/", True),
    ("/a", "/a/b", False), ("/a", "/ab", False), ("/a", "/b", False),
    ("/a/", "/a", True), ("A/B", "/a/b", True),
    ("/a/*", "/a", True), ("/a/*", "/a/b", True), ("/a/*", "/a/b/c", True),
    ("/a/*", "/ab", False), ("/a/*", "/b/a", False),
    ("/a/+/c/*", "/a/b/c", True), ("/a/+/c/*", "/a/b/c/d", True),
    ("/a/+/c/*", "/a/c", False), ("/a/+/c/*", "/a/b/d", False), ("/a/+/c/*", "/a/b", False),
    ("/a/+", "/a/b", True), ("/a/+", "/a", False), ("/a/+", "/a/b/c", False),
    ("/+", "/x", True), ("/+", "/x/y", False), ("/+/*", "/x/y/z", True),
    ("/live/single;/live/test", "/live/single", True),
    ("/live/single;/live/test", "/live/test", True),
    ("/live/single;/live/test", "/live/other", False),
    ("/live/single; /live/* ;", "/live/x/y", True),
    ("/live/*;*", "/any", True),
    ("", "/a", False), (" ; ;", "/a", False),
    ("/a/*", "/", False), ("/+", "/", False), ("*", "/", True),
    ("/a/b", "/a/./b", True), ("/a/b", "/a/c/../b", True),
]


@pytest.mark.parametrize("pattern,path,expected", MATRIX)
def test_matrix(pattern: str, path: str, expected: bool) -> None:
    assert RightsPattern.compile(pattern).match(path) is expected


@pytest.mark.parametrize("bad", [
    "/a/*/b", "*/a", "/a//b", "/a/b*", "a*", "/a/+x", "**", "/", "//",
    "/a/./b", "/a/../b", "/a/b\x00", "/a\tb", "/a /b", "/live/*;/x//y", "/ a",
])
def test_bad_patterns(bad: str) -> None:
    with pytest.raises(BadRequest):
        RightsPattern.compile(bad)
    with pytest.raises(BadRequest):
        validate_rights(bad)


def test_validate_returns_trimmed_and_limits() -> None:
    assert validate_rights("  /a/*  ") == "/a/*"
    with pytest.raises(BadRequest):
        validate_rights("/a" * 3000)
    with pytest.raises(BadRequest):
        validate_rights(";".join(f"/s{i}" for i in range(300)))


def test_admin_with_empty_rights_gets_everything() -> None:
    assert effective_rights("", True) == "*"
    assert effective_rights("  ", True) == "*"
    assert effective_rights("", False) == ""
    assert effective_rights("/a", True) == "/a"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.text(max_size=40))
def test_compile_raises_only_bad_request_and_match_never_raises(pattern: str, path: str) -> None:
    try:
        compiled = RightsPattern.compile(pattern)
    except BadRequest:
        return
    assert compiled.match(path) in (True, False)


segment = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@settings(max_examples=200, deadline=None)
@given(st.lists(segment, min_size=1, max_size=5), st.lists(segment, max_size=3))
def test_prefix_star_matches_everything_below(segs: list[str], more: list[str]) -> None:
    base = "/" + "/".join(segs)
    compiled = RightsPattern.compile(base + "/*")
    assert compiled.match(base)
    assert compiled.match("/".join([base, *more]))
    assert RightsPattern.compile(base).match("/".join([base, *more])) is (not more)
