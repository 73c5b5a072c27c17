"""Paging as the reference does it: sorted by key, `page_token` = last key
of the previous page, `next_page_token` = last key returned (or the token
echoed back when the page is empty)."""

from __future__ import annotations

from typing import Any, Sequence

from starlette.requests import Request

from ...errors import BadRequest

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000


def page_params(request: Request) -> tuple[int, str]:
    text = request.query_params.get("page_size", "")
    if text == "":
        size = DEFAULT_PAGE_SIZE
    else:
        try:
            size = int(text)
        except ValueError:
            raise BadRequest(f"page_size must be a number, got {text!r}") from None
        if size <= 0:
            size = DEFAULT_PAGE_SIZE
    return min(size, MAX_PAGE_SIZE), request.query_params.get("page_token", "")


def paginate(items: Sequence[dict[str, Any]], key: str, size: int,
             token: str) -> tuple[int, str, list[dict[str, Any]]]:
    ordered = sorted(items, key=lambda i: i[key])
    after = [i for i in ordered if i[key] > token] if token else ordered
    page = after[:size]
    return len(ordered), (page[-1][key] if page else token), page
