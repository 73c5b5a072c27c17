"""Sans-IO HTTP/1.1 request heads for the raw media paths, and the first-line
sniffing that tells RTSP from HTTP on the shared port.

Only what a media request needs: the request line, headers, the query. No
bodies (media requests have none). Caps keep a peer from making us buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote

from ..errors import ProtocolError

MAX_LINE = 8192
MAX_HEAD = 16384
MAX_HEADERS = 64
#: Request bodies (the REST API's JSON, read by uvicorn and Starlette) are
#: capped by the front's HTTP protocol, by Content-Length or as they arrive.
MAX_BODY = 64 * 1024

HTTP_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS",
                          b"PATCH", b"CONNECT", b"TRACE"})
RTSP_METHODS = frozenset({b"OPTIONS", b"DESCRIBE", b"ANNOUNCE", b"SETUP", b"PLAY",
                          b"PAUSE", b"RECORD", b"TEARDOWN", b"GET_PARAMETER",
                          b"SET_PARAMETER", b"REDIRECT"})

Kind = Literal["rtsp", "http", "need_data", "garbage"]


class HeadTooLarge(ProtocolError):
    """Request line or header block over the cap (HTTP 431 / RTSP 400)."""

    http_status = 431
    reason = "Request Header Fields Too Large"


def sniff(data: bytes | bytearray) -> tuple[Kind, bytes]:
    """Look at a connection's first bytes: ("rtsp"|"http", path) or why not.

    Decides on the first line alone: `METHOD SP URI SP RTSP/1.0` or
    `... HTTP/1.x`. Returns ("need_data", b"") until a line is complete,
    and raises HeadTooLarge when the first line grows past MAX_LINE.
    """
    end = data.find(b"\n")
    if end < 0:
        if len(data) > MAX_LINE:
            raise HeadTooLarge("request line too long")
        # Fail fast on bytes that cannot start any request we serve.
        head = bytes(data[:16])
        token = head.split(b" ", 1)[0]
        if head and (not _is_token_prefix(token) or (b" " in head and token not in HTTP_METHODS | RTSP_METHODS)):
            return "garbage", b""
        return "need_data", b""
    if end > MAX_LINE:
        raise HeadTooLarge("request line too long")
    line = bytes(data[:end]).rstrip(b"\r")
    parts = line.split(b" ")
    if len(parts) != 3:
        return "garbage", b""
    method, target, version = parts
    if version.startswith(b"RTSP/") and method in RTSP_METHODS:
        return "rtsp", target
    if version.startswith(b"HTTP/1.") and method in HTTP_METHODS:
        return "http", target
    return "garbage", b""


def _is_token_prefix(token: bytes) -> bool:
    return all(65 <= c <= 90 or c == 95 for c in token)  # A-Z and _


@dataclass
class HttpRequestHead:
    method: str
    target: str
    path: str
    query: dict[str, str]
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str, default: str = "") -> str:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return default

    @property
    def is_websocket(self) -> bool:
        return (self.header("upgrade").lower() == "websocket"
                and "upgrade" in self.header("connection").lower())


def parse_request_head(data: bytes | bytearray) -> tuple[HttpRequestHead, int] | None:
    """Parse a complete head from `data`: (head, bytes consumed), or None
    when more bytes are needed. Raises ProtocolError / HeadTooLarge."""
    end = data.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end = data.find(b"\n\n")
        sep = 2
    if end < 0:
        if len(data) > MAX_HEAD:
            raise HeadTooLarge("header block too large")
        return None
    if end > MAX_HEAD:
        raise HeadTooLarge("header block too large")
    lines = bytes(data[:end]).split(b"\n")
    request_line = lines[0].rstrip(b"\r")
    if len(request_line) > MAX_LINE:
        raise HeadTooLarge("request line too long")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise ProtocolError("malformed request line")
    if len(lines) - 1 > MAX_HEADERS:
        raise HeadTooLarge("too many headers")
    headers: list[tuple[str, str]] = []
    for raw in lines[1:]:
        raw = raw.rstrip(b"\r")
        name, colon, value = raw.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name:
            raise ProtocolError("malformed header line")
        try:
            headers.append((name.decode("ascii"), value.strip().decode("latin-1")))
        except UnicodeDecodeError:
            raise ProtocolError("non-ASCII header name") from None
    try:
        method = parts[0].decode("ascii")
        target = parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("non-ASCII request line") from None
    raw_path, _, raw_query = target.partition("?")
    query = dict(parse_qsl(raw_query, keep_blank_values=True))
    head = HttpRequestHead(method, target, unquote(raw_path), query, parts[2].decode("ascii"), headers)
    return head, end + sep
