"""Where the stores live: one interface, two backends.

The supervisor's `Stores` holds the tables (users, routes) and runs every
change as a function applied to a copy of one table; a backend makes the
change atomic and durable, and says when another node changed a table:

- `FileBackend` (one node, the default): the table's JSON file in the data
  folder, replaced atomically (temp file, fsync, rename).
- `hub.cluster.stores.RedisBackend` (`--cluster`): the same JSON in Redis,
  replaced in a WATCH/MULTI/EXEC transaction and announced by pub/sub.

A change that raises (a validation error) changes nothing: the copy is
dropped. The change function runs on the supervisor's loop and, with
Redis, maybe more than once (a transaction retried because another node
wrote first), so it must be quick (a password is hashed before, see
`hashed_password`) and touch only the table it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Protocol, Sequence, TypeVar

from ..auth.tokens import load_or_create_key

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class TableSpec(Generic[T]):
    """How one table is read, written and sent, whatever holds it."""

    kind: str  # "users", "routes": its name in messages and in Redis keys
    path: str  # its file in the data folder (the file backend; a cluster's first import)
    #: Read the file: (table, store it now?) — a missing file gives the initial table.
    load_file: Callable[[str], tuple[T, bool]]
    save_file: Callable[[T, str], None]
    to_json: Callable[[T], Any]  # the file's content (and what Redis holds)
    from_json: Callable[[Any], T]
    to_wire: Callable[[T], dict[str, Any]]  # what the children get



#: Called with (kind, table) when another node changed a table.
RemoteChange = Callable[[str, Any], None]


class StoreBackend(Protocol):
    name: str

    async def open(self, specs: Sequence[TableSpec[Any]]) -> dict[str, Any]:
        """Every table by kind, loaded (and stored when new or migrated)."""
        ...

    async def update(self, spec: TableSpec[T], current: T, change: Callable[[T], R]) -> tuple[T, R]:
        """Apply `change` to a copy of the table atomically: (new table, its
        result), or (the table, result) when the change changed nothing.
        `current` is the caller's table; a backend that other nodes write
        to applies the change to its own newest copy instead. A node's
        changes come one at a time (the caller's lock)."""
        ...

    async def token_key(self, path: str) -> bytes:
        """The token signing key shared by every process (and node)."""
        ...

    def on_remote_change(self, callback: RemoteChange) -> None:
        """Call `callback` when another node changed a table (never for a file)."""
        ...


class FileBackend:
    """The JSON files of one node's data folder."""

    name = "files"

    async def open(self, specs: Sequence[TableSpec[Any]]) -> dict[str, Any]:
        return self.load(specs)

    def load(self, specs: Sequence[TableSpec[Any]]) -> dict[str, Any]:
        """`open` without a loop: files are read at once."""
        tables: dict[str, Any] = {}
        for spec in specs:
            table, store = spec.load_file(spec.path)
            if store:
                spec.save_file(table, spec.path)
            tables[spec.kind] = table
        return tables

    def load_key(self, path: str) -> bytes:
        return load_or_create_key(path)

    async def update(self, spec: TableSpec[T], current: T, change: Callable[[T], R]) -> tuple[T, R]:
        before = spec.to_json(current)
        table = spec.from_json(before)
        result = change(table)
        if spec.to_json(table) == before:
            return current, result  # nothing changed: nothing written or sent
        spec.save_file(table, spec.path)
        return table, result

    async def token_key(self, path: str) -> bytes:
        return self.load_key(path)

    def on_remote_change(self, callback: RemoteChange) -> None:
        pass
