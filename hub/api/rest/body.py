"""Reading a REST request's body: counted against the cap as it arrives.

The front's HTTP protocol (hub.api.sniff.HubHttpProtocol) already refuses a
body over MAX_BODY by its Content-Length, and counts a chunked one, before
the app reads it; this is the app's own bound on what it keeps in memory.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from ...errors import BadRequest, PayloadTooLarge
from ...media.http1 import MAX_BODY

TOO_LARGE = f"request body larger than {MAX_BODY} bytes"


async def read_body(request: Request, cap: int = MAX_BODY) -> bytes:
    """The whole body, or PayloadTooLarge as soon as it passes `cap`.
    A body that stops arriving (the client left, or was refused and cut off
    by the protocol) is BadRequest, never an internal error."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise PayloadTooLarge(TOO_LARGE)
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise PayloadTooLarge(TOO_LARGE)
            parts.append(chunk)
    except ClientDisconnect:
        raise BadRequest("the request body did not arrive whole") from None
    return b"".join(parts)


def parse_json(data: bytes) -> Any:
    """`json.loads`, with JSON nested too deep for the parser (a RecursionError
    past ~1,000 levels: a 1 KiB body of `[`) raised as the ValueError that
    unreadable JSON raises, so callers answer both alike instead of a 500."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


async def json_body(request: Request) -> Any:
    body = await read_body(request)
    try:
        return parse_json(body)
    except ValueError as e:
        raise BadRequest(f"unreadable JSON: {e}") from None
