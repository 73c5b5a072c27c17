"""Errors across the link: an exception becomes an ErrorBody and back.

A handler in a shard that raises NotFound must make the front answer 404,
exactly as if the front had raised it itself. So the body carries the class
name and the HTTP status; the receiver re-raises the same HubError subclass
when it knows the name, else the first HubError subclass with that status,
else IpcError (carrying the status).
"""

from __future__ import annotations

from .. import errors
from ..errors import HubError, IpcError
from .envelope import ErrorBody


def _all_subclasses(cls: type[HubError]) -> list[type[HubError]]:
    out: list[type[HubError]] = []
    todo = [cls]
    while todo:
        c = todo.pop(0)
        out.append(c)
        todo.extend(c.__subclasses__())
    return out


def _known() -> tuple[dict[str, type[HubError]], dict[int, type[HubError]]]:
    by_name: dict[str, type[HubError]] = {}
    by_status: dict[int, type[HubError]] = {}
    # Only hub.errors' own classes: a subclass defined elsewhere (and maybe
    # not imported in the receiving process) must not change the mapping.
    for c in _all_subclasses(HubError):
        if c.__module__ != errors.__name__:
            continue
        by_name.setdefault(c.__name__, c)
        # Breadth-first: the most general class with a status wins
        # (ProtocolError before BadRequest, IpcError never for 500).
        if c is not HubError and c.http_status != 500:
            by_status.setdefault(c.http_status, c)
    return by_name, by_status


_BY_NAME, _BY_STATUS = _known()


def error_body(exc: BaseException) -> ErrorBody:
    """What the requester learns about an exception raised by a handler."""
    if isinstance(exc, HubError):
        return {"type": type(exc).__name__, "msg": exc.message, "status": exc.http_status}
    # Not one of ours: a bug in the handler. Say what, not where.
    return {"type": type(exc).__name__, "msg": str(exc) or type(exc).__name__, "status": 500}


def remote_error(body: ErrorBody) -> HubError:
    """The exception to raise in the requester for a remote error."""
    cls = _BY_NAME.get(body["type"]) or _BY_STATUS.get(body["status"])
    if cls is None:
        err: HubError = IpcError(f"remote {body['type']}: {body['msg']}")
        err.http_status = body["status"]
        return err
    return cls(body["msg"])
