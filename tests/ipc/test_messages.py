"""Every IPC method is declared once with its arguments' type (a request
also with its result's), handled by exactly the processes it is addressed
to (each through its one dispatch table) with a handler that takes that
type and answers that result, and sent by some code of the tree; mypy
refuses a handler or a caller of another result; and typed messages of each
kind go through real channels to the real tables and come back with the
real handlers' answers."""

from __future__ import annotations

import ast
import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hub.api.links import FRONT
from hub.child import ChildArgs
from hub.config import Config, LimitsConfig
from hub.errors import LimitReached, NotFound
from hub.ipc import messages as M
from hub.ipc.channel import IpcChannel, socketpair_channels
from hub.ipc.dispatch import Dispatch
from hub.ipc.handoff import send_socket
from hub.ipc.methods import ROLES, Call, Hand, Note
from hub.shard.main import SHARD, Shard, _Link as ShardLink
from hub.supervisor.admission import Admission
from hub.supervisor.links import SUPERVISOR, ChildLink
from hub.supervisor.tree import Child
from tests.ipc.support import Recorder

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "hub"
TABLES: dict[str, Dispatch[Any]] = {"supervisor": SUPERVISOR, "shard": SHARD, "front": FRONT}
DECLARED = M.declared()


def test_the_three_tables_are_the_three_processes() -> None:
    assert sorted(TABLES) == sorted(ROLES)
    assert all(table.role == role for role, table in TABLES.items())


@pytest.mark.parametrize("role", ROLES)
def test_a_process_handles_exactly_the_methods_addressed_to_it(role: str) -> None:
    table = TABLES[role]
    addressed = {name: m.kind for name, m in DECLARED.items() if role in m.to}
    assert {name: kind for name, (kind, _fn) in table.handlers.items()} == addressed


def test_every_method_is_handled_somewhere_and_every_handler_is_declared() -> None:
    handled = {name for table in TABLES.values() for name in table.handlers}
    assert handled == set(DECLARED)
    assert all(m.to for m in DECLARED.values())


@pytest.mark.parametrize("role", ROLES)
def test_every_handler_takes_its_methods_declared_type(role: str) -> None:
    for name, (_kind, fn) in TABLES[role].handlers.items():
        hints = typing.get_type_hints(fn)
        params = [p for p in hints if p != "return"]
        assert hints[params[-2 if DECLARED[name].kind == "fd" else -1]] is DECLARED[name].args, (role, name)


def test_every_request_declares_its_result() -> None:
    """`Call[A, R](...)`: each request of hub.ipc.messages says what it answers."""
    calls = {const: value for const, value in vars(M).items() if isinstance(value, Call)}
    assert len(calls) == sum(1 for m in DECLARED.values() if m.kind == "req")
    undeclared = sorted(const for const, m in calls.items()
                        if m.result is None or isinstance(m.result, typing.TypeVar))
    assert undeclared == []
    assert M.PING.result is str and M.LOGIN.result is M.TokenPair
    assert M.HLS_OPEN.result is M.HlsFolder


@pytest.mark.parametrize("role", ROLES)
def test_every_request_handler_returns_its_methods_declared_result(role: str) -> None:
    """The handler's annotation says the declared result itself (mypy would
    also take a narrower one; the tables keep to the declaration)."""
    for name, (kind, fn) in TABLES[role].handlers.items():
        if kind == "req":
            assert typing.get_type_hints(fn)["return"] == DECLARED[name].result, (role, name)


def test_mypy_refuses_a_handler_or_a_caller_of_another_result(tmp_path: Path) -> None:
    """What the declared results are for: mypy --strict (the repo's settings)
    on a module that registers and calls declared requests flags exactly the
    lines marked `# E`: a handler answering another type, a caller taking the
    answer as another type, a key the result's TypedDict does not have, a
    `Call` whose result is not spelt, a method widened to another result
    (`Call` is invariant in it: a handler of anything could be registered
    for `Call[NoArgs, object]`; callers see it as a covariant `Answers`)."""
    source = textwrap.dedent("""\
        from typing import Any, Final

        from hub.ipc import messages as M
        from hub.ipc.channel import IpcChannel
        from hub.ipc.dispatch import Dispatch
        from hub.ipc.methods import Answers, Call

        TABLE: Dispatch[None] = Dispatch("front")
        UNDECLARED: Final = Call("undeclared", M.NoArgs, "front")  # E
        WIDENED: Call[M.NoArgs, object] = M.PING  # E
        ASKED: Answers[object] = M.PING


        async def ping_int(state: None, ch: IpcChannel, a: M.NoArgs) -> int:
            return 1


        async def kick(state: None, ch: IpcChannel, a: M.KickArgs) -> bool:
            return True


        async def stats(state: None, ch: IpcChannel, a: M.StatsArgs) -> dict[str, Any]:
            return {}


        TABLE.request(M.PING, ping_int)  # E
        TABLE.request(M.KICK, kick)
        TABLE.request(M.STATS, stats)


        async def caller(ch: IpcChannel) -> None:
            pong: str = await ch.call(M.PING({}))
            number: int = await ch.call(M.PING({}))  # E
            kicked = bool(await ch.call(M.KICK({"cid": 1})))  # wider than bool: fine
            pair = await ch.call(M.LOGIN({"username": "u", "password": "p"}))
            access: str = pair["access_token"]
            pair["token"]  # E
            print(pong, number, kicked, access)
        """)
    module = tmp_path / "typed_results.py"
    module.write_text(source, encoding="utf-8")
    expected = {i for i, line in enumerate(source.splitlines(), 1) if line.endswith("# E")}
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                        "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(module)],
                       cwd=ROOT, env={**os.environ, "MYPYPATH": str(ROOT)}, capture_output=True, text=True,
                       timeout=300)
    flagged = {int(line.split(":")[1]) for line in r.stdout.splitlines() if ": error:" in line}
    assert flagged == expected, r.stdout + r.stderr


def _method_references() -> dict[str, int]:
    """How often each constant of hub.ipc.messages is named in hub/, not
    counting its declaration and its registration in a dispatch table."""
    names = {const for const, value in vars(M).items() if isinstance(value, (Call, Note, Hand))}
    counts = dict.fromkeys(names, 0)
    for path in HUB.rglob("*.py"):
        if path == HUB / "ipc" / "messages.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules: set[str] = set()  # what the file calls hub.ipc.messages ("M")
        direct: set[str] = set()  # constants it imports by name
        registrations: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                for alias in node.names:
                    if node.module.endswith("ipc") and alias.name == "messages":
                        modules.add(alias.asname or alias.name)
                    elif node.module.endswith("ipc.messages") and alias.name in names:
                        direct.add(alias.asname or alias.name)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("request", "notice", "handoff")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in ("SUPERVISOR", "SHARD", "FRONT")
                    and node.args):
                registrations.add(id(node.args[0]))
        for node in ast.walk(tree):
            if id(node) in registrations:
                continue
            if (isinstance(node, ast.Attribute) and node.attr in names
                    and isinstance(node.value, ast.Name) and node.value.id in modules):
                counts[node.attr] += 1
            elif isinstance(node, ast.Name) and node.id in direct:
                counts[node.id] += 1
    return counts


def test_every_declared_method_has_a_sender() -> None:
    """A method only declared and handled is dead (like `close_consumer` was)."""
    unsent = sorted(name for name, n in _method_references().items() if n == 0)
    assert unsent == []
    assert "close_consumer" not in DECLARED and "hello" not in DECLARED


def test_a_table_refuses_a_method_not_addressed_to_it_or_registered_twice() -> None:
    table: Dispatch[None] = Dispatch("front")

    async def pong(state: None, ch: IpcChannel, a: M.NoArgs) -> str:
        return "pong"

    with pytest.raises(ValueError, match="not addressed to the front"):
        table.request(M.OPEN_STREAM, pong)  # type: ignore[arg-type]
    table.request(M.PING, pong)
    with pytest.raises(ValueError, match="registered twice"):
        table.request(M.PING, pong)
    assert list(table.handlers) == ["ping"]


# -- typed messages through real channels to the real tables ------------------------------
def test_requests_and_notices_reach_the_supervisors_table() -> None:
    """A child's `admit` (request), `release` (notice) and a refused one: the
    supervisor's real handlers over a socketpair, against a real Admission
    with a limit of one player."""
    async def main() -> None:
        admission = Admission(lambda: LimitsConfig(players=1))
        sup: Any = SimpleNamespace(admission=admission, cluster=None)
        child = Child("front", 0)
        ours, theirs = socketpair_channels(Recorder(), ChildLink(sup, child))
        try:
            a: M.AdmissionArgs = {"kind": "player", "path": "/a", "ip": "10.0.0.1"}
            assert await ours.call(M.ADMIT(a)) is True
            assert admission.held == {"front-0": {("player", "/a", "10.0.0.1"): 1}}
            with pytest.raises(LimitReached, match="players"):
                await ours.call(M.ADMIT({"kind": "player", "path": "/b", "ip": "10.0.0.2"}))
            ours.tell(M.RELEASE(a))
            # Sent after the notice, answered after it was handled: the slot is free again.
            assert await ours.call(M.ADMIT({"kind": "player", "path": "/b", "ip": "10.0.0.2"})) is True
            assert admission.players == 1 and admission.players_by_path == {"/b": 1}
            ours.tell(M.SERVING({}))
            await ours.call(M.ADMIT({"kind": "publisher", "path": "/c", "ip": "10.0.0.3", "holder": "shard-1"}))
            assert child.serving and admission.held["shard-1"] == {("publisher", "/c", "10.0.0.3"): 1}
            with pytest.raises(NotFound, match="supervisor: unknown method 'close_consumer'"):
                await ours.request("close_consumer", {})
            with pytest.raises(NotFound, match="not running as a cluster"):
                await ours.call(M.CLUSTER_NODES({}))
        finally:
            ours.close()
            theirs.close()

    asyncio.run(main())


def test_requests_and_a_socket_hand_off_reach_the_shards_table(tmp_path: Path) -> None:
    """A front's requests and an RTSP publisher's socket (with the bytes the
    front read from it) to a real Shard: its RTSP session answers over the
    socket it was handed, and counts in the shard's `stats`."""
    async def main() -> None:
        shard = Shard(ChildArgs("shard", 0, -1, f"ipctest{os.getpid()}", str(tmp_path), Config(data=str(tmp_path))))
        front, link = socketpair_channels(Recorder(), ShardLink(shard, False))
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        try:
            assert await front.call(M.PING({})) == "pong"
            assert await front.call(M.LIST_STREAMS({})) == []
            with pytest.raises(NotFound, match="404 page not found"):
                await front.call(M.STREAM_INFO({"path": "/nothing"}))
            with pytest.raises(NotFound, match="shard: unknown method 'close_consumer'"):
                await front.request("close_consumer", {})
            head = b"OPTIONS rtsp://127.0.0.1/live/cam RTSP/1.0\r\nCSeq: 7\r\n\r\n"
            send_socket(front, M.HANDOFF_RTSP({"path": "/live/cam", "peer": "127.0.0.1:5", "user": ""}),
                        accepted, head)
            accepted.close()
            client.setblocking(False)
            loop = asyncio.get_running_loop()
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
                assert chunk, answer
                answer += chunk
            assert answer.startswith(b"RTSP/1.0 200 OK\r\n") and b"\r\nCSeq: 7\r\n" in answer
            stats = await front.call(M.STATS({"extra": False}))
            assert stats["rtsp"] == {"total": 0, "active": 1}
        finally:
            client.close()
            listener.close()
            front.close()
            link.close()
            shard.publishers.close()
            await asyncio.sleep(0)

    asyncio.run(main())


def test_a_hand_off_no_table_takes_is_closed() -> None:
    """The supervisor takes no socket: the fd it is sent is closed, not leaked."""
    async def main() -> None:
        sup: Any = SimpleNamespace(admission=Admission(lambda: LimitsConfig()))
        ours, theirs = socketpair_channels(Recorder(), ChildLink(sup, Child("front", 0)))
        r, w = os.pipe()
        try:
            ours.send_fd(M.HANDOFF_RTSP.name, {"path": "/x"}, r)
            os.close(r)
            await ours.call(M.ADMIT({"kind": "player", "path": "/x", "ip": "1"}))  # after the fd frame
            # The only reader is gone: writing fails at once.
            with pytest.raises(BrokenPipeError):
                os.write(w, b"x")
        finally:
            os.close(w)
            ours.close()
            theirs.close()

    asyncio.run(main())
