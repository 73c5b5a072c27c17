"""One dispatch table per process: method name -> handler, checked as it is built.

A process builds one `Dispatch` at import (`hub.supervisor.links.SUPERVISOR`,
`hub.shard.main.SHARD`, `hub.api.links.FRONT`) and its links' `IpcHandler`
methods hand every frame to it. Registering ties a handler to a declared method:
mypy checks that the handler takes that method's TypedDict and, for a
request, that it returns the method's declared result (`Call[A, R]`: an
`Awaitable[R]`); the table refuses a method not addressed to its process or
registered twice.

A request for a method the table does not hold raises NotFound (the requester
re-raises it: a 404 at the API, never a crash); such a notice is logged and
dropped; such an fd is closed.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable, Generic, TypeVar

from ..errors import NotFound
from .channel import IpcChannel
from .methods import A, Call, Hand, Kind, Method, Note, R, Role

log = logging.getLogger("hub.ipc")

#: What a process's handlers get first: its own state (the shard, the
#: front's context, the supervisor's link to one child).
S = TypeVar("S")


class Dispatch(Generic[S]):
    __slots__ = ("role", "handlers")

    def __init__(self, role: Role) -> None:
        self.role = role
        #: method name -> (its kind, its handler). The one mapping of this process.
        self.handlers: dict[str, tuple[Kind, Callable[..., Any]]] = {}

    def _add(self, method: Method[Any], fn: Callable[..., Any]) -> None:
        if self.role not in method.to:
            raise ValueError(f"{method!r} is not addressed to the {self.role}")
        if method.name in self.handlers:
            raise ValueError(f"{method.name!r} registered twice in the {self.role}'s table")
        self.handlers[method.name] = (method.kind, fn)

    # -- building ---------------------------------------------------------------------
    def request(self, method: Call[A, R], fn: Callable[[S, IpcChannel, A], Awaitable[R]]) -> None:
        self._add(method, fn)

    def notice(self, method: Note[A], fn: Callable[[S, IpcChannel, A], None]) -> None:
        self._add(method, fn)

    def handoff(self, method: Hand[A], fn: Callable[[S, IpcChannel, A, int], None]) -> None:
        """`fn` owns the fd (closes or adopts it)."""
        self._add(method, fn)

    # -- dispatching (from an IpcHandler) ---------------------------------------------
    async def on_request(self, state: S, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
        entry = self.handlers.get(method)
        if entry is None or entry[0] != "req":
            raise NotFound(f"{self.role}: unknown method {method!r}")
        return await entry[1](state, ch, args)

    def on_notice(self, state: S, ch: IpcChannel, method: str, args: dict[str, Any]) -> None:
        entry = self.handlers.get(method)
        if entry is None or entry[0] != "note":
            log.debug("%s: notice %r from %s dropped: not ours", self.role, method, ch.name)
            return
        entry[1](state, ch, args)

    def on_fd(self, state: S, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        entry = self.handlers.get(method)
        if entry is None or entry[0] != "fd":
            log.warning("%s: hand-off %r from %s refused: not ours", self.role, method, ch.name)
            os.close(fd)
            return
        entry[1](state, ch, args, fd)
