"""Response bodies shared by the Starlette app and the raw media protocols."""

from __future__ import annotations

import json
from typing import Any

CORS = {"Access-Control-Allow-Origin": "*"}

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

    `length=None` leaves Content-Length out: a stream delimited by close."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    headers = {**CORS, **(extra or {})}
    if status not in (101, 204, 304):
        headers.setdefault("Content-Type", content_type)
        if length is not None:
            headers["Content-Length"] = str(len(body))
    if close:
        headers["Connection"] = "close"
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
