"""Every control-plane message type and method name, declared in one place.

Envelopes (the "t" field picks the type):

    request   {t:"req",  id:int, m:str, a:dict}
    response  {t:"res",  id:int, r:any}
    error     {t:"err",  id:int, e:{type:str, msg:str, status:int}}
    notice    {t:"note", m:str, a:dict}            one-way, no answer
    hand-off  {t:"fd",   m:str, a:dict}            + exactly one fd (SCM_RIGHTS)
                                                   in the same sendmsg

Method names are constants so a typo fails at import, not at run time. The
server adds its own; keep them here.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypedDict, Union

from ..errors import ProtocolError

# -- message types --------------------------------------------------------
REQ: Final = "req"
RES: Final = "res"
ERR: Final = "err"
NOTICE: Final = "note"
FD: Final = "fd"

# -- method names ---------------------------------------------------------
HELLO = "hello"                    # first request on a link: who am I
PING = "ping"                      # supervisor heartbeat
STATS = "stats"                    # per-process counters for the API
OPEN_STREAM = "open_stream"        # front -> shard: ring name for a path
CLOSE_CONSUMER = "close_consumer"  # front -> shard: a player went away
WAKE = "wake"                      # shard -> front notice: {stream id: write seq}, coalesced
HANDOFF_RTSP = "handoff_rtsp"      # front -> shard fd: an RTSP publisher's TCP socket
HANDOFF_RTMP = "handoff_rtmp"      # front -> shard fd: an RTMP publisher's TCP socket (at `publish`)
STORE_CHANGED = "store_changed"    # supervisor -> all notice: users/routes changed
METRICS = "metrics"                # supervisor -> child: plain counters (hub.supervisor.tally);
                                   # front -> supervisor: the tree's /metrics text
HEALTH = "health"                  # front -> supervisor: the tree answers
READY = "ready"                    # front -> supervisor: every child up and serving, no drain
SERVING = "serving"                # child -> supervisor notice: listening / serving, stores loaded
DRAIN = "drain"                    # supervisor -> child: stop taking connections and sessions
RELOAD = "reload"                  # supervisor -> child: {config}: the reloadable keys changed
ADMIT = "admit"                    # child -> supervisor: {kind, path, ip[, holder]} a session may start
ADMITTED = "admitted"              # front -> supervisor notice: a session started (no limit set)
RELEASE = "release"                # holder -> supervisor notice: {kind, path, ip} a session ended
HLS_OPEN = "hls_open"              # front -> shard: {path, variant} start/keep a segmenter; LL: subscribe
HLS_PART = "hls_part"              # shard -> front notice: {p, st: LlState, n: next part} a part is out
HLS_GONE = "hls_gone"              # shard -> front notice: {p} the stream's fMP4 segmenter stopped
HLS_TOUCH = "hls_touch"            # front -> shard notice: {p} LL players still ask
# A cluster's nodes (hub.cluster; only with --cluster):
CLUSTER_LOCATE = "cluster_locate"  # shard -> supervisor: {path, routed}: {relay: url, node} or {} (pull it here)
CLUSTER_STREAM = "cluster_stream"  # shard -> supervisor notice: {up, path, sid, kind, codecs, start_on, t}
CLUSTER_STREAMS = "cluster_streams"  # front -> supervisor: the other nodes' streams and consumers
CLUSTER_NODES = "cluster_nodes"    # front -> supervisor: the nodes (GET /api/v1/cluster)
CLUSTER_DELETE = "cluster_delete"  # front -> supervisor: {path}: True when sent on to the owning node
CLUSTER_KICK = "cluster_kick"      # front -> supervisor: {node, cid}: a consumer held by another node

# Several label values in one key of a metrics report.
LABEL_SEP = "\t"

# Key of the bytes a front already read from a socket it hands over.
ALREADY_READ = "already_read"


class ErrorBody(TypedDict):
    type: str      # class name of the remote exception (e.g. "NotFound")
    msg: str       # its message
    status: int    # its http_status; lets the receiver map unknown types


class Request(TypedDict):
    t: Literal["req"]
    id: int
    m: str
    a: dict[str, Any]


class Response(TypedDict):
    t: Literal["res"]
    id: int
    r: Any


class ErrorResponse(TypedDict):
    t: Literal["err"]
    id: int
    e: ErrorBody


class Notice(TypedDict):
    t: Literal["note"]
    m: str
    a: dict[str, Any]


class FdMessage(TypedDict):
    t: Literal["fd"]
    m: str
    a: dict[str, Any]


Message = Union[Request, Response, ErrorResponse, Notice, FdMessage]


def request(id: int, method: str, args: dict[str, Any]) -> Request:
    return {"t": REQ, "id": id, "m": method, "a": args}


def response(id: int, result: Any) -> Response:
    return {"t": RES, "id": id, "r": result}


def error_response(id: int, body: ErrorBody) -> ErrorResponse:
    return {"t": ERR, "id": id, "e": body}


def notice(method: str, args: dict[str, Any]) -> Notice:
    return {"t": NOTICE, "m": method, "a": args}


def fd_message(method: str, args: dict[str, Any]) -> FdMessage:
    return {"t": FD, "m": method, "a": args}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check(msg: dict[str, Any]) -> Message:
    """Check a decoded frame's envelope; ProtocolError if it is not one of ours.

    Only the envelope: the args of a method are the handler's business.
    """
    t = msg["t"]
    if t == REQ:
        ok = _is_int(msg.get("id")) and isinstance(msg.get("m"), str) and isinstance(msg.get("a"), dict)
    elif t == RES:
        ok = _is_int(msg.get("id")) and "r" in msg
    elif t == ERR:
        e = msg.get("e")
        ok = (_is_int(msg.get("id")) and isinstance(e, dict) and isinstance(e.get("type"), str)
              and isinstance(e.get("msg"), str) and _is_int(e.get("status")))
    elif t == NOTICE or t == FD:
        ok = isinstance(msg.get("m"), str) and isinstance(msg.get("a"), dict)
    else:
        raise ProtocolError(f"unknown IPC message type {t!r}")
    if not ok:
        raise ProtocolError(f"malformed IPC {t!r} message")
    return msg  # type: ignore[return-value]
