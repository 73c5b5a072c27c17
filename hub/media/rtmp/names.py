"""Stream paths and credentials out of RTMP's app and stream names.

``rtmp://HOST/live/cam1`` reaches us as app ``live`` (connect) and stream
name ``cam1`` (publish/play); the stream path is ``/live/cam1``. Encoders
that can only fill in a server URL and a stream key (OBS) carry credentials
as a query on either: ``live?token=..`` or ``cam1?user=..&pass=..``. Both
queries are read; the stream name's wins where they name the same key.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from .constants import RtmpProtocolError

#: Longest app or stream name (query included) we accept.
MAX_NAME_LEN = 1024
#: Most query parameters in one name.
MAX_QUERY_FIELDS = 32


def split_query(name: str) -> tuple[str, dict[str, str]]:
    """``"cam1?user=a&pass=b"`` -> ``("cam1", {"user": "a", "pass": "b"})``."""
    if len(name) > MAX_NAME_LEN:
        raise RtmpProtocolError("RTMP: app or stream name too long")
    base, sep, query = name.partition("?")
    if not sep:
        return base, {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError as exc:
        raise RtmpProtocolError("RTMP: too many query parameters") from exc
    return base, dict(pairs)


def stream_path(app: str, stream: str) -> str:
    """``("live", "cam1")`` -> ``"/live/cam1"`` (names without their queries)."""
    app = app.strip("/")
    stream = stream.strip("/")
    if not stream:
        raise RtmpProtocolError("RTMP: empty stream name")
    return f"/{app}/{stream}" if app else f"/{stream}"
