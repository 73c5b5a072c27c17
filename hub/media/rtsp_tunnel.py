"""Sans-IO RTSP over HTTP tunnelling (Apple's QuickTime scheme).

A client opens two HTTP connections that share an `x-sessioncookie`: a GET
(`Accept: application/x-rtsp-tunnelled`) whose response body is the server's
side of the RTSP conversation (responses and `$` data, raw), and a POST
(`Content-Type: application/x-rtsp-tunnelled`) whose never-ending body is the
client's RTSP requests in base64. The POST gets no answer. This module tells
the two apart from a request head and decodes the POST body incrementally.
"""

from __future__ import annotations

import binascii
from typing import Literal

from ..errors import ProtocolError
from .http1 import HttpRequestHead

CONTENT_TYPE = "application/x-rtsp-tunnelled"
#: Longest session cookie accepted (QuickTime uses 22 characters, FFmpeg 32 hex).
MAX_COOKIE = 128

GET_RESPONSE = (b"HTTP/1.0 200 OK\r\n"
                b"Content-Type: application/x-rtsp-tunnelled\r\n"
                b"Cache-Control: no-cache\r\n"
                b"Connection: close\r\n\r\n")

TunnelRole = Literal["get", "post"]

_WHITESPACE = b" \t\r\n"
_DELETE_WS = bytes.maketrans(b"", b"")


def tunnel_role(head: HttpRequestHead) -> TunnelRole | None:
    """"get" or "post" for the two tunnel halves, None for any other request."""
    if head.method == "GET" and CONTENT_TYPE in head.header("accept").lower():
        return "get"
    if head.method == "POST" and head.header("content-type").split(";", 1)[0].strip().lower() == CONTENT_TYPE:
        return "post"
    return None


def session_cookie(head: HttpRequestHead) -> str:
    """The `x-sessioncookie` pairing both halves; ProtocolError when missing or odd."""
    cookie = head.header("x-sessioncookie").strip()
    if not cookie or len(cookie) > MAX_COOKIE or not cookie.isascii() or not cookie.isprintable():
        raise ProtocolError("missing or malformed x-sessioncookie")
    return cookie


class Base64Decoder:
    """Incremental base64: `feed()` text, get back every byte whole groups give.

    Clients encode each RTSP request on its own, so the body is a string of
    base64 blocks, each possibly ending in `=` padding; groups of 4 are
    decoded independently, whatever the chunking. Whitespace is skipped.
    Anything else that is not base64 raises ProtocolError.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    @property
    def pending(self) -> int:
        """Characters held until their group completes (0..3)."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> bytes:
        text = bytes(data).translate(_DELETE_WS, _WHITESPACE)
        if self._pending:
            text = self._pending + text
        whole = len(text) - len(text) % 4
        self._pending = text[whole:]
        if not whole:
            return b""
        chunk = text[:whole] if whole != len(text) else text
        try:
            if b"=" not in chunk:
                return binascii.a2b_base64(chunk, strict_mode=True)
            return self._decode_padded(chunk)
        except binascii.Error as e:
            raise ProtocolError(f"bad base64 in tunnelled request: {e}") from None

    @staticmethod
    def _decode_padded(chunk: bytes) -> bytes:
        """Blocks that end in padding, each decoded on its own."""
        out: list[bytes] = []
        start = 0
        n = len(chunk)
        while start < n:
            eq = chunk.find(b"=", start)
            if eq < 0:
                out.append(binascii.a2b_base64(chunk[start:], strict_mode=True))
                break
            end = (eq // 4 + 1) * 4
            if end > n:
                raise binascii.Error("padding out of place")
            out.append(binascii.a2b_base64(chunk[start:end], strict_mode=True))
            start = end
        return b"".join(out)
