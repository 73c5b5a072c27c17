"""What a declared IPC method is: its name, its arguments' type, who handles it.

`hub.ipc.messages` declares every method with one of these. A `Call` is a
request (answered), a `Note` a one-way notice, a `Hand` a frame carrying one
file descriptor. The kind is part of the type, so mypy refuses a `notify` of
a request and a handler of the wrong kind; the arguments' TypedDict is the
other type parameter, so it refuses a payload with a missing or misspelt key
at the sender and a handler that reads another method's payload.

On the wire nothing changes: the name goes in "m", the TypedDict (a plain
dict at run time) in "a".
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Generic, Literal, Mapping, TypeAlias, TypeVar

Role = Literal["supervisor", "shard", "front"]
ROLES: tuple[Role, ...] = ("supervisor", "shard", "front")
Kind = Literal["req", "note", "fd"]

#: A method's arguments: a TypedDict.
A = TypeVar("A", bound=Mapping[str, Any])


class Method(Generic[A]):
    """One method name with its arguments' type and the processes that handle it."""

    __slots__ = ("name", "args", "to")
    kind: ClassVar[Kind]

    def __init__(self, name: str, args: Callable[..., A], *to: Role) -> None:
        if not to:
            raise ValueError(f"{name}: no process handles it")
        self.name = name
        #: The TypedDict class (typed as its constructor, which is what mypy
        #: lets a TypeVar be solved from).
        self.args = args
        self.to: frozenset[Role] = frozenset(to)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r} -> {', '.join(sorted(self.to))})"


# Calling a declared method with its arguments makes the message to send,
# `(method, args)`: `ch.call(M.OPEN_STREAM({"path": path}))`. The method fixes
# the TypedDict before the dict display is checked against it (a generic
# `call(method, args)` leaves mypy to infer both at once, which it cannot
# for a dict display), and a tuple is the cheapest thing to carry them in.
class Call(Method[A]):
    """A request: the peer answers (or raises, re-raised at the caller)."""

    __slots__ = ()
    kind = "req"

    def __call__(self, args: A) -> tuple[Call[A], A]:
        return (self, args)


class Note(Method[A]):
    """A one-way notice: no answer, corked with the others of its loop pass."""

    __slots__ = ()
    kind = "note"

    def __call__(self, args: A) -> tuple[Note[A], A]:
        return (self, args)


class Hand(Method[A]):
    """A hand-off: the frame carries one file descriptor (SCM_RIGHTS)."""

    __slots__ = ()
    kind = "fd"

    def __call__(self, args: A) -> tuple[Hand[A], A]:
        return (self, args)


#: A request, a notice, a hand-off ready to send (what the calls above make).
Ask: TypeAlias = "tuple[Call[Any], Mapping[str, Any]]"
Tell: TypeAlias = "tuple[Note[Any], Mapping[str, Any]]"
Pass: TypeAlias = "tuple[Hand[Any], Mapping[str, Any]]"
