"""The REST API's paging parameters; the paging rule itself is
`hub.store.paging`'s, shared with the users and routes tables."""

from __future__ import annotations

from typing import Any, Sequence

from starlette.requests import Request

from ...errors import BadRequest
from ...store.paging import page_keys, page_size_or_default


def page_params(request: Request) -> tuple[int, str]:
    text = request.query_params.get("page_size", "")
    size = 0
    if text != "":
        try:
            size = int(text)
        except ValueError:
            raise BadRequest(f"page_size must be a number, got {text!r}") from None
    return page_size_or_default(size), request.query_params.get("page_token", "")


def paginate(items: Sequence[dict[str, Any]], key: str, size: int,
             token: str) -> tuple[int, str, list[dict[str, Any]]]:
    """A page of already gathered items (the streams of every shard)."""
    by_key = {i[key]: i for i in items}
    total, next_token, keys = page_keys(by_key, size, token)
    return total, next_token, [by_key[k] for k in keys]
