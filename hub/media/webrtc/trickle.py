"""Trickle ICE fragments (RFC 8840 ``application/trickle-ice-sdpfrag``), as a
WHEP player or WHIP publisher PATCHes them to its session (RFC 9725 4.3).

We are ICE-lite: the peer's address is learnt from its connectivity checks,
so its candidates are read only to be counted and then ignored. What
matters is whether the fragment restarts ICE (new ``a=ice-ufrag`` /
``a=ice-pwd``), which we do not support (422 per RFC 9725).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from hub.errors import ProtocolError

__all__ = ["TrickleFragment", "parse_sdpfrag", "session_request", "answer_session_op", "MAX_FRAGMENT_LINES"]

#: Lines read from one fragment (each candidate is one).
MAX_FRAGMENT_LINES = 512
_LINE = re.compile(r"[a-z]=[\x20-\x7e]*")
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]{1,256}")


@dataclass(frozen=True, slots=True)
class TrickleFragment:
    ice_ufrag: str | None
    ice_pwd: str | None
    candidates: int
    end_of_candidates: bool
    mids: tuple[str, ...]

    def restarts_ice(self, remote_ufrag: str) -> bool:
        """Whether this fragment carries credentials other than the session's."""
        return self.ice_ufrag is not None and self.ice_ufrag != remote_ufrag


def parse_sdpfrag(text: str | bytes) -> TrickleFragment:
    """Read a fragment; ProtocolError for anything that is not SDP lines."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("trickle ICE fragment is not UTF-8") from None
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln]
    if len(lines) > MAX_FRAGMENT_LINES:
        raise ProtocolError(f"trickle ICE fragment over {MAX_FRAGMENT_LINES} lines")
    ufrag = pwd = None
    candidates = 0
    end = False
    mids: list[str] = []
    for ln in lines:
        if not _LINE.fullmatch(ln):
            raise ProtocolError(f"trickle ICE fragment: bad line {ln[:40]!r}")
        if not ln.startswith("a="):
            continue  # m= lines name the section the next lines belong to
        name, _, value = ln[2:].partition(":")
        if name == "ice-ufrag" or name == "ice-pwd":
            if not _ICE_CHARS.fullmatch(value):
                raise ProtocolError(f"trickle ICE fragment: bad a={name}")
            if name == "ice-ufrag":
                ufrag = value
            else:
                pwd = value
        elif name == "candidate":
            candidates += 1
        elif name == "end-of-candidates":
            end = True
        elif name == "mid" and len(mids) < 32:
            mids.append(value[:32])
    if (ufrag is None) != (pwd is None):
        raise ProtocolError("trickle ICE fragment with only one of a=ice-ufrag / a=ice-pwd")
    return TrickleFragment(ufrag, pwd, candidates, end, tuple(mids))


def session_request(etag: str, remote_ufrag: str, op: str, if_match: str | None, ufrag: str | None) -> str:
    """What a DELETE or PATCH of a session comes to (RFC 9725 4.3): "precondition"
    when If-Match names another entity tag, "delete", "restart" for an ICE
    restart (If-Match ``*`` or new credentials: not supported), else "trickle"
    (candidates, ignored by an ICE-lite server)."""
    if if_match not in (None, "", "*") and if_match != etag:
        return "precondition"
    if op == "delete":
        return "delete"
    if if_match == "*" or (ufrag is not None and ufrag != remote_ufrag):
        return "restart"
    return "trickle"


class OpSession(Protocol):
    """A WHEP or WHIP session as `answer_session_op` reads it."""

    path: str
    etag: str
    peer: Any  # its `creds.remote_ufrag`


def answer_session_op(session: OpSession | None, args: Mapping[str, object],
                      close: Callable[[], None]) -> str | None:
    """A DELETE or PATCH of a session (`args`: path, op, if_match, ufrag)
    as WHEP and WHIP answer it: "ok", "precondition", "restart", or None
    when the session is not `session` (not here, or of another path);
    `close` ends the session on a DELETE."""
    if session is None or session.path != args.get("path"):
        return None
    verdict = session_request(session.etag, session.peer.creds.remote_ufrag, str(args.get("op")),
                              _opt(args.get("if_match")), _opt(args.get("ufrag")))
    if verdict == "delete":
        close()
    return "ok" if verdict in ("delete", "trickle") else verdict


def _opt(v: object) -> str | None:
    return None if v is None else str(v)
