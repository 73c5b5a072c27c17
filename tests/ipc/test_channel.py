"""IpcChannel against a real child process (tests/ipc/peer.py), under asyncio and uvloop."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from hub.errors import BadRequest, HubError, IpcError, IpcTimeout, NotFound, ProtocolError, SessionNotFound
from hub.ipc import channel as channel_mod
from hub.ipc.channel import IpcChannel, connect_unix, serve_unix, socketpair_channels

from .conftest import Peers
from .support import Recorder

Run = Callable[[Callable[[], Awaitable[Any]]], Any]


def test_request_response(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        rec = Recorder()
        ch = IpcChannel(sock, rec)
        assert await ch.request("add", {"a": 2, "b": 40}) == 42
        blob = bytes(range(256))
        assert await ch.request("echo", {"b": blob, "s": "é", "l": [1, None]}) == {"b": blob, "s": "é", "l": [1, None]}
        ch.close()
        await ch.wait_closed()
        assert rec.closed == [None]
    run(body)
    assert proc.wait(timeout=5) == 0


def test_concurrent_requests_answered_out_of_order(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        ch = IpcChannel(sock, Recorder())
        done: list[str] = []

        async def call(tag: str, method: str, args: dict[str, Any]) -> Any:
            r = await ch.request(method, args)
            done.append(tag)
            return r
        results = await asyncio.gather(
            call("slow", "sleep", {"s": 0.3}), call("mid", "sleep", {"s": 0.1}),
            *(call(f"add{i}", "add", {"a": i, "b": 1000}) for i in range(50)))
        assert results == [0.3, 0.1] + [i + 1000 for i in range(50)]
        assert done[-2:] == ["mid", "slow"]
        ch.close()
    run(body)


def test_timeout_then_link_still_works(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        ch = IpcChannel(sock, Recorder())
        t0 = time.monotonic()
        with pytest.raises(IpcTimeout):
            await ch.request("sleep", {"s": 0.4}, timeout=0.1)
        assert 0.09 < time.monotonic() - t0 < 0.35
        await asyncio.sleep(0.4)          # the late answer arrives and is dropped
        assert await ch.request("add", {"a": 1, "b": 1}) == 2
        assert not ch.closed
        ch.close()
    run(body)


@pytest.mark.parametrize("name,cls", [
    ("NotFound", NotFound), ("SessionNotFound", SessionNotFound), ("BadRequest", BadRequest),
    ("ProtocolError", ProtocolError), ("HubError", HubError),
])
def test_remote_hub_errors_come_back_as_the_same_class(run: Run, peers: Peers, name: str, cls: type) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        ch = IpcChannel(sock, Recorder())
        with pytest.raises(HubError) as ei:
            await ch.request("fail", {"type": name, "msg": "remote says no"})
        assert type(ei.value) is cls and ei.value.message == "remote says no"
        # A bug in the remote handler is an IpcError (500), and the link survives.
        with pytest.raises(IpcError) as ei2:
            await ch.request("boom", {})
        assert type(ei2.value) is IpcError and ei2.value.http_status == 500 and "boom" in ei2.value.message
        assert await ch.request("add", {"a": 1, "b": 2}) == 3
        ch.close()
    run(body)


def test_notices_both_ways_in_order(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        rec = Recorder()
        ch = IpcChannel(sock, rec)
        for i in range(2000):
            ch.notify("echo", {"i": i})
        assert await ch.request("notices", {"n": 100}) == 100
        await rec.wait_notices(2100)
        echoed = [a["i"] for m, a in rec.notices if m == "echoed"]
        ticks = [a["i"] for m, a in rec.notices if m == "tick"]
        assert echoed == list(range(2000))
        assert ticks == list(range(100))
        # The child's notices were sent before its answer, so all are here.
        assert rec.notices[-1] == ("tick", {"i": 99})
        ch.close()
    run(body)


def test_large_frames_go_through_partial_writes(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        ch = IpcChannel(sock, Recorder())
        blob = os.urandom(5 * 1024 * 1024)
        results = await asyncio.gather(*(ch.request("echo", {"b": blob, "k": k}) for k in range(3)))
        assert results == [{"b": blob, "k": k} for k in range(3)]
        assert ch.queued == 0
        with pytest.raises(ProtocolError):   # over the 16 MiB frame cap: refused locally
            await ch.request("echo", {"b": b"\0" * (17 * 1024 * 1024)})
        assert await ch.request("add", {"a": 1, "b": 1}) == 2
        ch.close()
    run(body)


def test_child_death_fails_pending_requests(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        rec = Recorder()
        ch = IpcChannel(sock, rec)
        slow = asyncio.ensure_future(ch.request("sleep", {"s": 5}))
        await asyncio.sleep(0.05)
        with pytest.raises(IpcError):
            await ch.request("exit", {})
        with pytest.raises(IpcError) as ei:
            await slow
        assert not isinstance(ei.value, IpcTimeout)
        await asyncio.wait_for(rec.closed_event.wait(), 2)
        assert rec.closed == [None] and ch.closed
        with pytest.raises(IpcError):
            await ch.request("add", {"a": 1, "b": 1})
        ch.notify("echo", {})  # dropped, not raised
    run(body)
    assert proc.wait(timeout=5) == 3


def test_malformed_frame_from_peer_closes_link(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        rec = Recorder()
        ch = IpcChannel(sock, rec)
        with pytest.raises(IpcError):
            await ch.request("garbage", {})
        await asyncio.wait_for(rec.closed_event.wait(), 2)
        assert len(rec.closed) == 1 and isinstance(rec.closed[0], ProtocolError)
        assert ch.closed
    run(body)
    assert proc.wait(timeout=5) == 0   # the child saw EOF and stopped


def test_closing_cancels_our_handler_tasks(run: Run, peers: Peers) -> None:
    async def body() -> None:
        started = asyncio.Event()
        cancelled: list[bool] = []

        class Slow(Recorder):
            async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any:
                started.set()
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    cancelled.append(True)
                    raise
        a, b = socketpair_channels(Recorder(), Slow())
        pending = asyncio.ensure_future(a.request("x", {}))
        await started.wait()
        b.close()
        await b.wait_closed()
        assert cancelled == [True]
        with pytest.raises(IpcError):
            await pending
        a.close()
    run(body)


def test_fds_interleaved_with_notices_keep_their_frames(run: Run, peers: Peers) -> None:
    proc, sock = peers.spawn_fd()

    async def body() -> None:
        rec = Recorder()
        ch = IpcChannel(sock, rec)
        reads = []
        for k in range(40):
            r, w = os.pipe()
            for i in range(k % 5):
                ch.notify("echo", {"k": k, "i": i})
            # Every third frame is big, so it goes out in several sends and
            # its fd arrives well before its last byte.
            pad = b"\0" * (300_000 if k % 3 == 0 else 0)
            ch.send_fd("fd_write", {"text": f"pipe-{k}".encode(), "pad": pad}, w)
            os.close(w)   # the channel holds its own dup until sent
            reads.append(r)
        assert await ch.request("add", {"a": 0, "b": 0}) == 0
        for k, r in enumerate(reads):
            with os.fdopen(r, "rb") as f:
                assert f.read() == f"pipe-{k}".encode()   # EOF: every copy of w is closed
        await rec.wait_notices(sum(k % 5 for k in range(40)))
        ch.close()
    run(body)


def test_unix_path_server_in_child(run: Run, peers: Peers, tmp_path: Path) -> None:
    path = str(tmp_path / "peer.sock")
    proc = peers.spawn_path(path)

    async def body() -> None:
        deadline = time.monotonic() + 5
        while True:
            try:
                ch = await connect_unix(path, Recorder())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)
        assert await ch.request("add", {"a": 20, "b": 22}) == 42
        ch.close()
    run(body)
    assert proc.wait(timeout=5) == 0


def test_serve_unix_in_process_with_on_connect(run: Run, tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")

    async def body() -> None:
        accepted: list[IpcChannel] = []
        server = await serve_unix(path, Recorder, on_connect=accepted.append)
        client = await connect_unix(path, Recorder())
        assert await client.request("add", {"a": 1, "b": 2}) == 3
        assert len(accepted) == 1
        assert await accepted[0].request("sleep", {"s": 0}) == 0
        server.close()
        assert not os.path.exists(path)
        assert await client.request("add", {"a": 3, "b": 4}) == 7  # open links outlive the listener
        client.close()
        accepted[0].close()
    run(body)


def test_stuck_peer_closes_link_past_the_output_cap(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_mod, "MAX_QUEUED", 1 << 20)

    async def body() -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        rec = Recorder()
        ch = IpcChannel(ours, rec)
        for _ in range(200):           # the other end never reads
            ch.notify("x", {"b": b"\0" * 65536})
            await asyncio.sleep(0)
            if ch.closed:
                break
        assert ch.closed and isinstance(rec.closed[0], IpcError)
        theirs.close()
    run(body)


def test_fd_frame_without_fd_is_a_protocol_error(run: Run) -> None:
    async def body() -> None:
        from hub.ipc.codec import encode_frame
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        rec = Recorder()
        IpcChannel(ours, rec)
        theirs.sendall(encode_frame({"t": "fd", "m": "x", "a": {}}))
        await asyncio.wait_for(rec.closed_event.wait(), 2)
        assert isinstance(rec.closed[0], ProtocolError) and rec.fds == []
        theirs.close()
    run(body)
