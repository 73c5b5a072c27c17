"""The control plane's envelopes: what every frame looks like on the wire.

The "t" field picks the type:

    request   {t:"req",  id:int, m:str, a:dict}
    response  {t:"res",  id:int, r:any}
    error     {t:"err",  id:int, e:{type:str, msg:str, status:int}}
    notice    {t:"note", m:str, a:dict}            one-way, no answer
    hand-off  {t:"fd",   m:str, a:dict}            + exactly one fd (SCM_RIGHTS)
                                                   in the same sendmsg

"m" is a method name and "a" its arguments, both declared in
`hub.ipc.messages`; this module checks only the envelope.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Mapping, TypedDict, Union, cast

from ..errors import ProtocolError

# -- message types --------------------------------------------------------
REQ: Final = "req"
RES: Final = "res"
ERR: Final = "err"
NOTICE: Final = "note"
FD: Final = "fd"


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


# The senders' args are TypedDicts (Mappings, for mypy); on the wire and to
# a receiver they are plain dicts. `cast` costs nothing: no copy.
def request(id: int, method: str, args: Mapping[str, Any]) -> Request:
    return {"t": REQ, "id": id, "m": method, "a": cast(dict[str, Any], args)}


def response(id: int, result: Any) -> Response:
    return {"t": RES, "id": id, "r": result}


def error_response(id: int, body: ErrorBody) -> ErrorResponse:
    return {"t": ERR, "id": id, "e": body}


def notice(method: str, args: Mapping[str, Any]) -> Notice:
    return {"t": NOTICE, "m": method, "a": cast(dict[str, Any], args)}


def fd_message(method: str, args: Mapping[str, Any]) -> FdMessage:
    return {"t": FD, "m": method, "a": cast(dict[str, Any], args)}


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
