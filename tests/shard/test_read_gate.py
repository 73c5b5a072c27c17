"""The shard's read gate (`ingest_window`) on real sockets and a real loop:
a held socket's bytes stay in the kernel until the window ends, then come
in one read; one timer serves every source held in a window, none is armed
while nothing is held."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import uvloop

from hub.shard.read_gate import HOLD_LOWAT, HeldSocket, ReadGate


class Reader(asyncio.Protocol):
    def __init__(self) -> None:
        self.reads: list[tuple[float, bytes]] = []
        self.transport: asyncio.Transport | None = None
        self.held: HeldSocket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reads.append((time.monotonic(), data))
        if self.held is not None:
            self.held.hold()  # as a publisher does after each read


async def _pair(loop: asyncio.AbstractEventLoop) -> tuple[Reader, socket.socket]:
    srv = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    srv.close()
    conn.setblocking(False)
    reader = Reader()
    await loop.connect_accepted_socket(lambda: reader, conn)
    return reader, peer


def _lowat(t: asyncio.Transport) -> int:
    return int(t.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))


async def _wait(cond: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_a_held_socket_reads_once_per_window() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = ReadGate(150)
        a, pa = await _pair(loop)
        b, pb = await _pair(loop)
        assert a.transport is not None and b.transport is not None
        a.held, b.held = gate.socket_of(a.transport), gate.socket_of(b.transport)
        assert not gate.armed and gate.held == 0
        pa.sendall(b"first")
        await _wait(lambda: len(a.reads) == 1)
        assert gate.held == 1 and gate.armed and _lowat(a.transport) == HOLD_LOWAT
        held_at = a.reads[0][0]
        # Written while held, in three sends: nothing is read before the window ends.
        for chunk in (b"x" * 100, b"y" * 100, b"z" * 100):
            pa.sendall(chunk)
            await asyncio.sleep(0.02)
        pb.sendall(b"other")  # another source, held in the same window
        await _wait(lambda: len(b.reads) == 1)
        assert gate.held == 2
        assert len(a.reads) == 1
        await _wait(lambda: len(a.reads) == 2)
        at, data = a.reads[1]
        assert data == b"x" * 100 + b"y" * 100 + b"z" * 100  # one read, all of it
        assert 0.12 <= at - held_at <= 0.5
        # Held again after that read; once nothing comes, nothing stays armed.
        await _wait(lambda: not gate.armed, 1.0)
        assert gate.held == 0
        assert _lowat(a.transport) == 1 and _lowat(b.transport) == 1
        # A source held twice in a window is held once.
        assert a.held is not None
        a.held.hold()
        a.held.hold()
        assert gate.held == 1
        gate.close()
        assert gate.held == 0 and not gate.armed and _lowat(a.transport) == 1
        for t, p in ((a.transport, pa), (b.transport, pb)):
            t.close()
            p.close()

    uvloop.run(main())


def test_releasing_a_closed_socket_is_harmless() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = ReadGate(20)
        a, pa = await _pair(loop)
        assert a.transport is not None
        held = gate.socket_of(a.transport)
        assert held is not None
        held.hold()
        a.transport.abort()
        pa.close()
        await asyncio.sleep(0.05)  # the gate opened on a closed socket
        assert gate.held == 0 and not gate.armed

    uvloop.run(main())


def test_a_source_closed_while_held_leaves_the_others_held_in_its_window_unharmed() -> None:
    """A publisher that hangs up while held (its socket closed: uvloop's
    stand-in raises ValueError on setsockopt) neither raises in the timer
    nor leaves the sources held after it in that window at HOLD_LOWAT: they
    were stuck there for good (read only every 256 KiB, never held again,
    and a first player's release raised)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[object] = []
        loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx.get("exception") or ctx))
        gate = ReadGate(30)
        a, pa = await _pair(loop)
        b, pb = await _pair(loop)
        assert a.transport is not None and b.transport is not None
        a.held, b.held = gate.socket_of(a.transport), gate.socket_of(b.transport)
        pa.sendall(b"a")
        await _wait(lambda: len(a.reads) == 1)
        pb.sendall(b"b")
        await _wait(lambda: len(b.reads) == 1)
        assert gate.held == 2
        a.transport.abort()  # the publisher went, held
        pa.close()
        await _wait(lambda: not gate.armed)
        assert errors == [] and gate.held == 0
        assert _lowat(b.transport) == 1 and b.held is not None and not b.held.held
        pb.sendall(b"again")  # read at once, held again, released by a reader
        await _wait(lambda: len(b.reads) == 2)
        assert gate.held == 1
        b.held.release()
        assert gate.held == 0 and _lowat(b.transport) == 1 and errors == []
        # A source that ends tells the gate: nothing of it stays held.
        pb.sendall(b"last")
        await _wait(lambda: len(b.reads) == 3)
        assert gate.held == 1
        b.held.forget()
        b.transport.abort()
        assert gate.held == 0 and not gate.armed
        pb.close()
        await asyncio.sleep(0.05)
        assert errors == []

    uvloop.run(main())


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReadGate(0)


def test_gate_for_the_settings() -> None:
    assert ReadGate.for_config(0, 0) is None  # every read at once
    every = ReadGate.for_config(30, 40)  # ingest_window wins: every live source
    assert every is not None and every.always and every.window == pytest.approx(0.030)
    unwatched = ReadGate.for_config(0, 40)
    assert unwatched is not None and not unwatched.always and unwatched.window == pytest.approx(0.040)


def test_an_unwatched_stream_is_held_and_a_watched_one_is_not() -> None:
    """`unwatched_ingest_window`: the session holds its source's socket
    after a read only while nobody wants the stream read at once (no front,
    no LL-HLS segmenter; HLS segments and recordings read in windows too);
    `ingest_window` holds it whoever reads."""
    from hub.shard.streams import StreamTable
    from tests.shard.ingest_helpers import run, session, tracks

    async def main(streams: StreamTable) -> None:
        loop = asyncio.get_running_loop()
        a, pa = await _pair(loop)
        assert a.transport is not None
        gate = ReadGate(40, always=False)
        ingest, _src = session(streams, "/live/unwatched")
        ingest.read_in_windows(gate, a.transport)
        stream = ingest.go_live(tracks())

        ingest.count(100)  # nobody reads it: held
        assert gate.held == 1 and _lowat(a.transport) == HOLD_LOWAT
        gate.open()

        streams.open("/live/unwatched", reader="front-0")  # a front's player
        ingest.count(100)
        assert gate.held == 0 and _lowat(a.transport) == 1
        streams.release(stream.stream_id, "front-0")
        ingest.count(100)  # nobody again
        assert gate.held == 1
        gate.open()

        def segments() -> None:  # an HLS segmenter or a recording: seconds-long files
            pass

        stream.add_tap(segments)
        ingest.count(100)
        assert gate.held == 1 and _lowat(a.transport) == HOLD_LOWAT
        gate.open()
        stream.make_prompt(segments)  # an LL-HLS player asked: parts are awaited
        ingest.count(100)
        assert gate.held == 0 and _lowat(a.transport) == 1
        stream.remove_tap(segments)
        assert stream.taps == [] and stream.prompt_taps == [] and not stream.watched
        ingest.count(100)
        assert gate.held == 1
        gate.open()

        b, pb = await _pair(loop)
        assert b.transport is not None
        always = ReadGate(40)
        other, _ = session(streams, "/live/watched")
        other.read_in_windows(always, b.transport)
        watched = other.go_live(tracks())
        streams.open("/live/watched", reader="front-0")
        assert watched.readers
        other.count(100)  # ingest_window: held though read
        assert always.held == 1 and _lowat(b.transport) == HOLD_LOWAT
        other.close()  # the source ended: the gate holds nothing of it
        assert always.held == 0 and not always.armed
        for g in (gate, always):
            g.close()
        for t, p in ((a.transport, pa), (b.transport, pb)):
            t.close()
            p.close()

    run(main)


@pytest.mark.parametrize("how", ["reader", "prompt tap", "tap made prompt"])
def test_the_first_reader_releases_a_held_source_at_once(how: str) -> None:
    """A source held because nobody read its stream reads what gathered as
    soon as a reader (a front's player) or a prompt tap (LL-HLS) comes, not
    at the end of its window; the gate's timer goes with the last held."""
    from hub.shard.streams import StreamTable
    from tests.shard.ingest_helpers import run, session, tracks

    async def main(streams: StreamTable) -> None:
        loop = asyncio.get_running_loop()
        a, pa = await _pair(loop)
        assert a.transport is not None
        gate = ReadGate(2000, always=False)  # far longer than any wait below
        ingest, _src = session(streams, "/live/joined")
        ingest.read_in_windows(gate, a.transport)
        stream = ingest.go_live(tracks())

        class Counting(Reader):
            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                ingest.count(len(data))

        a.__class__ = Counting  # the source's reads count, as a publisher's do
        pa.sendall(b"first")
        await _wait(lambda: len(a.reads) == 1)
        assert gate.held == 1 and gate.armed
        pa.sendall(b"gathered")
        await asyncio.sleep(0.1)
        assert len(a.reads) == 1  # held: the bytes wait in the kernel
        joined = time.monotonic()
        if how == "reader":
            streams.open("/live/joined", reader="front-0")
        elif how == "prompt tap":
            stream.add_tap(lambda: None, prompt=True)
        else:
            def tap() -> None:
                pass

            stream.add_tap(tap)  # HLS segments: still held
            assert gate.held == 1 and gate.armed
            stream.make_prompt(tap)  # an LL-HLS player came
        assert gate.held == 0 and not gate.armed and _lowat(a.transport) == 1
        await _wait(lambda: len(a.reads) == 2, 1.0)
        assert a.reads[1][1] == b"gathered"
        assert a.reads[1][0] - joined < 0.5  # not the 2 s window
        pa.sendall(b"watched")
        await _wait(lambda: len(a.reads) == 3, 1.0)
        assert gate.held == 0  # watched now: read at once, never held
        gate.close()
        a.transport.close()
        pa.close()

    run(main)
