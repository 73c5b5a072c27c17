"""What a declared IPC method is: its name, its arguments' type, who handles it,
and for a request, its result's type.

`hub.ipc.messages` declares every method with one of these. A `Call` is a
request (answered), a `Note` a one-way notice, a `Hand` a frame carrying one
file descriptor. The kind is part of the type, so mypy refuses a `notify` of
a request and a handler of the wrong kind; the arguments' TypedDict is the
next type parameter, so it refuses a payload with a missing or misspelt key
at the sender and a handler that reads another method's payload. A `Call`
has a third: its result, `Call[A, R]`, spelt where it is declared
(`Call[NoArgs, str]("ping", NoArgs, ...)`; mypy asks for it when it is
left out). So mypy refuses a handler that answers something else
(`hub.ipc.dispatch.Dispatch.request`) and a caller that expects something
else (`IpcChannel.call` returns `R`).

On the wire nothing changes: the name goes in "m", the TypedDict (a plain
dict at run time) in "a", the answer in "r". Nothing checks an answer
against `R` at run time: the handler's annotation, checked by mypy, is the
promise the caller's type rests on.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Generic, Literal, Mapping, TypeAlias, TypeVar, get_args

Role = Literal["supervisor", "shard", "front"]
ROLES: tuple[Role, ...] = ("supervisor", "shard", "front")
Kind = Literal["req", "note", "fd"]

#: A method's arguments: a TypedDict.
A = TypeVar("A", bound=Mapping[str, Any])
#: A request's result: what its handlers return and its callers get.
R = TypeVar("R")
#: The same, as the callers see it (`Answers`).
R_co = TypeVar("R_co", covariant=True)


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


class Answers(Generic[R_co]):
    """A request as its callers see it: a name whose answer is an `R_co`.

    Covariant, so a caller may take the answer as something wider (an
    `Answers[bool]` is an `Answers[object]`: `bool(await ...)`, `parts +=
    await ...` type-check). `Call` itself is invariant in its result, so
    the declaration fixes what a handler must answer (`Dispatch.request`):
    were it covariant, `PING` would also be a `Call[NoArgs, object]`, for
    which a handler answering anything could be registered."""

    __slots__ = ()
    name: str


# Calling a declared method with its arguments makes the message to send,
# `(method, args)`: `ch.call(M.OPEN_STREAM({"path": path}))`. The method fixes
# the TypedDict before the dict display is checked against it (a generic
# `call(method, args)` leaves mypy to infer both at once, which it cannot
# for a dict display), and a tuple is the cheapest thing to carry them in.
class Call(Method[A], Answers[R], Generic[A, R]):
    """A request: the peer answers an `R` (or raises, re-raised at the caller)."""

    # `Call[A, R](...)` keeps its alias here (typing sets `__orig_class__`
    # on what a subscripted generic makes, where there is room for it), so
    # `result` can say what was declared.
    __slots__ = ("__orig_class__",)
    kind = "req"

    def __call__(self, args: A) -> tuple[Call[A, R], A]:
        return (self, args)

    @property
    def result(self) -> Any:
        """The declared result type, `R` of `Call[A, R](...)`; None if the
        declaration did not spell it (tests, docs: nothing checks an answer)."""
        alias = getattr(self, "__orig_class__", None)
        return None if alias is None else get_args(alias)[1]


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
#: `Ask[R]`: a request whose answer is an `R` (what a wrapper of
#: `IpcChannel.call` takes to return `R` in turn).
Ask: TypeAlias = tuple[Answers[R], Mapping[str, Any]]
Tell: TypeAlias = "tuple[Note[Any], Mapping[str, Any]]"
Pass: TypeAlias = "tuple[Hand[Any], Mapping[str, Any]]"
