"""Paging as the reference does it, for every listing (users, routes,
streams): sorted by key, `page_token` = the last key of the previous page,
`next_page_token` = the last key returned, or the token echoed back when
the page is empty."""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000


def page_size_or_default(size: int) -> int:
    """A size of 0 or less means the default; more than the cap is capped."""
    return min(size if size > 0 else DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page_keys(keys: Iterable[str], size: int, token: str) -> tuple[int, str, list[str]]:
    """(total, next_page_token, the page's keys in order)."""
    ordered = sorted(keys)
    size = page_size_or_default(size)
    after = [k for k in ordered if k > token][:size] if token else ordered[:size]
    return len(ordered), (after[-1] if after else token), after
