"""HTTP answers shared by the Starlette app and the raw protocols, and the
one place that turns an error into an HTTP answer: `public_message` (what
the client may read) and `http_error_response` (the raw bytes); the
Starlette app's exception handlers use the first."""

from __future__ import annotations

import json
import logging
from typing import Any

from ..errors import HubError

log = logging.getLogger("hub.api.http")

CORS = {"Access-Control-Allow-Origin": "*"}

#: The ASGI scope extension (``scope["extensions"]``) our HTTP protocol adds:
#: ``{"abort": callable}`` ends the response under way short, closing the
#: connection after what was sent (a body whose promised length cannot be kept).
ABORT_EXTENSION = "hub.abort"

CROSSDOMAIN_XML = (
    b'<?xml version="1.0" ?><cross-domain-policy>\n'
    b'\t\t\t<allow-access-from domain="*" />\n'
    b'\t\t\t<allow-http-request-headers-from domain="*" headers="*"/>\n'
    b'\t\t</cross-domain-policy>')


def json_body(obj: Any) -> bytes:
    """Tab-indented JSON without a trailing newline, as the reference writes."""
    return json.dumps(obj, indent="\t", ensure_ascii=False).encode()


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}, ensure_ascii=False).encode()


def raw_http_response(status: int, reason: str, body: bytes = b"",
                      content_type: str = "application/json",
                      extra: dict[str, str] | None = None, close: bool = True,
                      length: int | None = -1) -> bytes:
    """A complete HTTP/1.1 response head (+ body) for the raw media paths.

    `length=None` leaves Content-Length out: a stream delimited by close; a
    `length` of 0 or more is the Content-Length of a body sent apart."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    headers = {**CORS, **(extra or {})}
    if status not in (101, 204, 304):
        headers.setdefault("Content-Type", content_type)
        if length is not None:
            headers["Content-Length"] = str(len(body) if length < 0 else length)
    if close:
        headers["Connection"] = "close"
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def public_message(exc: HubError) -> str:
    """A client's mistake says what it was; our own failure (5xx: an IPC
    link, a child) says only its kind, unless the error is meant to be read
    (`public_message`), and the detail goes to the log."""
    if exc.http_status >= 500 and not exc.public_message:
        log.warning("answering %d for: %s: %s", exc.http_status, type(exc).__name__, exc.message)
        return exc.reason
    return exc.message


def error_headers(exc: HubError) -> dict[str, str]:
    """Headers an error adds to its answer (416's Content-Range...)."""
    extra: dict[str, str] = getattr(exc, "headers", {})
    return extra


def http_error_response(exc: HubError, close: bool = True) -> bytes:
    """The raw HTTP answer to `exc`: its status and reason, a JSON error body."""
    return raw_http_response(exc.http_status, exc.reason, error_body(public_message(exc)),
                             extra=error_headers(exc), close=close)
