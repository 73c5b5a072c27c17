"""IpcChannel: one control-plane link over a Unix stream socket.

Why not an asyncio Transport: file descriptors travel as SCM_RIGHTS ancillary
data, which transports neither send nor receive. So the channel drives a
non-blocking socket itself with `loop.add_reader` / `add_writer` (works the
same under uvloop) and `recvmsg` / `sendmsg`.

Writes go through one output queue. Notices and fd frames are corked: one
flush per loop iteration sends all of them with as few syscalls as possible.
Requests and responses flush at once (someone is waiting for them), taking
any corked frames ahead of them along, so order is always kept. A frame carrying an fd starts its own queue segment so that the
fd is attached to the first byte of that frame and all earlier bytes go out
before it; the receiver keeps arriving fds in a FIFO and gives the next one
to each "fd" frame, which is exact because the kernel never delivers an fd
later than the first byte it was sent with.
"""

from __future__ import annotations

import array
import asyncio
import collections
import itertools
import logging
import os
import socket
from typing import Any, Callable, Coroutine, Mapping, Protocol

from ..errors import HubError, IpcError, IpcTimeout, ProtocolError
from . import envelope as M
from .codec import FrameDecoder, encode_frame
from .latency import REQUEST_LATENCY
from .methods import Ask, R, Tell
from .remote import error_body, remote_error

log = logging.getLogger("hub.ipc")

READ_SIZE = 256 * 1024
MAX_FDS_PER_READ = 8
_ANC_SIZE = socket.CMSG_SPACE(MAX_FDS_PER_READ * array.array("i").itemsize)
# Past this much unsent output the peer is not reading: drop the link rather
# than grow without bound (the supervisor restarts a stuck child).
MAX_QUEUED = 64 * 1024 * 1024


class IpcHandler(Protocol):
    """What a channel calls for incoming traffic. One handler per link."""

    async def on_request(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> Any: ...

    def on_notice(self, ch: IpcChannel, method: str, args: dict[str, Any]) -> None: ...

    def on_fd(self, ch: IpcChannel, method: str, args: dict[str, Any], fd: int) -> None:
        """Owns `fd` from now on (close it or adopt it)."""

    def on_close(self, ch: IpcChannel, exc: BaseException | None) -> None:
        """Called once; `exc` is None for EOF or a local close()."""


class _Segment:
    """Output bytes, optionally with one fd riding on their first byte."""

    __slots__ = ("buf", "fd")

    def __init__(self, data: bytes, fd: int | None) -> None:
        self.buf = bytearray(data)
        self.fd = fd


class IpcChannel:
    def __init__(self, sock: socket.socket, handler: IpcHandler, *, name: str = "") -> None:
        """Take over a connected Unix stream socket; call with a running loop."""
        self._loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self._sock = sock
        self._fileno = sock.fileno()
        self.handler = handler
        self.name = name or f"ipc-{self._fileno}"
        self._decoder = FrameDecoder()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[Any], asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._out: collections.deque[_Segment] = collections.deque()
        self._queued = 0
        self._flush_scheduled = False
        self._writing = False
        self._in_fds: collections.deque[int] = collections.deque()
        self._closed = False
        self._loop.add_reader(self._fileno, self._on_readable)

    @classmethod
    def from_fd(cls, fd: int, handler: IpcHandler, *, name: str = "") -> IpcChannel:
        """Adopt an inherited socketpair end (the supervisor's `pass_fds`)."""
        return cls(socket.socket(fileno=fd), handler, name=name)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued(self) -> int:
        """Bytes waiting to be written (back-pressure indicator)."""
        return self._queued

    def __repr__(self) -> str:
        return f"<IpcChannel {self.name}{' closed' if self._closed else ''}>"

    # -- sending ----------------------------------------------------------
    # `call` and `tell` take a message of a method declared in
    # hub.ipc.messages, `M.OPEN_STREAM({"path": path})` (what the code of the
    # tree uses); `request` and `notify` take any name (what they are built
    # on; tests use them with their own names).
    def call(self, msg: Ask[R], timeout: float = 5.0) -> Coroutine[Any, Any, R]:
        """`request` of a declared method (its coroutine itself: no extra frame),
        answering the method's declared result `R`.

        The answer is whatever the peer's handler returned, not checked
        here: `R` holds because mypy holds the handler to it (`Dispatch.request`)."""
        return self.request(msg[0].name, msg[1], timeout)

    def tell(self, msg: Tell) -> None:
        """`notify` of a declared method."""
        self.notify(msg[0].name, msg[1])

    async def request(self, method: str, args: Mapping[str, Any], timeout: float = 5.0) -> Any:
        """Call `method` on the peer; its result, or its error re-raised here.

        Raises IpcTimeout after `timeout` seconds, IpcError if the link closes
        first, and the remote HubError subclass (see hub.ipc.remote) if the
        peer's handler raised.
        """
        if self._closed:
            raise IpcError(f"{self.name}: link closed")
        rid = next(self._ids)
        frame = encode_frame(M.request(rid, method, args))
        fut: asyncio.Future[Any] = self._loop.create_future()
        timer = self._loop.call_later(timeout, self._expire, rid, method, timeout)
        self._pending[rid] = (fut, timer)
        started = self._loop.time()
        self._enqueue(frame, None, urgent=True)
        try:
            return await fut
        finally:
            REQUEST_LATENCY.observe(method, self._loop.time() - started)
            entry = self._pending.pop(rid, None)
            if entry is not None:
                entry[1].cancel()
            else:
                timer.cancel()

    def notify(self, method: str, args: Mapping[str, Any]) -> None:
        """Send a one-way notice. Silently dropped on a closed link."""
        if not self._closed:
            self._enqueue(encode_frame(M.notice(method, args)), None)

    def send_fd(self, method: str, args: Mapping[str, Any], fd: int) -> None:
        """Send a frame with one file descriptor; the caller keeps its own `fd`.

        The channel holds a dup until the kernel has taken it, so the caller
        may close its copy as soon as this returns.
        """
        if self._closed:
            raise IpcError(f"{self.name}: link closed")
        frame = encode_frame(M.fd_message(method, args))
        self._enqueue(frame, os.dup(fd))

    def _enqueue(self, frame: bytes, fd: int | None, urgent: bool = False) -> None:
        """Queue a frame; `urgent` (someone awaits it) flushes now instead of corking."""
        out = self._out
        if fd is None and out:
            out[-1].buf += frame
        else:
            out.append(_Segment(frame, fd))
        self._queued += len(frame)
        if self._queued > MAX_QUEUED:
            self._abort(IpcError(f"{self.name}: peer stopped reading ({self._queued} bytes queued)"))
            return
        if self._writing:
            return  # the writer callback drains the queue in order
        if urgent:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._corked_flush)

    def _corked_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        if self._closed:
            return
        try:
            self._write_out()
        except OSError as e:
            self._abort(e)
            return
        if self._out and not self._writing:
            self._writing = True
            self._loop.add_writer(self._fileno, self._on_writable)

    def _on_writable(self) -> None:
        try:
            self._write_out()
        except OSError as e:
            self._abort(e)
            return
        if not self._out and self._writing:
            self._writing = False
            self._loop.remove_writer(self._fileno)

    def _write_out(self) -> None:
        """Send queued segments until done or the socket is full."""
        out = self._out
        sock = self._sock
        while out:
            seg = out[0]
            try:
                if seg.fd is not None:
                    fds = array.array("i", (seg.fd,))
                    n = sock.sendmsg([seg.buf], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                    os.close(seg.fd)
                    seg.fd = None
                else:
                    n = sock.send(seg.buf)
            except (BlockingIOError, InterruptedError):
                return
            self._queued -= n
            if n == len(seg.buf):
                out.popleft()
            else:
                del seg.buf[:n]
                return

    # -- receiving --------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            data, anc, flags, _ = self._sock.recvmsg(READ_SIZE, _ANC_SIZE, socket.MSG_CMSG_CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._abort(e)
            return
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                self._in_fds.extend(fds)
        if flags & socket.MSG_CTRUNC:
            self._abort(ProtocolError(f"{self.name}: more than {MAX_FDS_PER_READ} fds in one read"))
            return
        if not data:
            self._abort(None)
            return
        try:
            frames = self._decoder.feed(data)
            for frame in frames:
                self._dispatch(M.check(frame))
                if self._closed:
                    return
        except ProtocolError as e:
            log.warning("%s: %s; closing link", self.name, e)
            self._abort(e)

    def _dispatch(self, msg: M.Message) -> None:
        if msg["t"] == M.RES or msg["t"] == M.ERR:
            entry = self._pending.pop(msg["id"], None)
            if entry is None:
                return  # answer to a request that timed out or was cancelled
            fut, timer = entry
            timer.cancel()
            if not fut.done():
                if msg["t"] == M.RES:
                    fut.set_result(msg["r"])
                else:
                    fut.set_exception(remote_error(msg["e"]))
        elif msg["t"] == M.REQ:
            task = self._loop.create_task(self._serve(msg["id"], msg["m"], msg["a"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif msg["t"] == M.NOTICE:
            try:
                self.handler.on_notice(self, msg["m"], msg["a"])
            except Exception:
                log.exception("%s: notice %r handler failed", self.name, msg["m"])
        else:  # M.FD
            if not self._in_fds:
                raise ProtocolError(f"{self.name}: fd frame without a file descriptor")
            fd = self._in_fds.popleft()
            try:
                self.handler.on_fd(self, msg["m"], msg["a"], fd)
            except Exception:
                log.exception("%s: fd %r handler failed", self.name, msg["m"])

    async def _serve(self, rid: int, method: str, args: dict[str, Any]) -> None:
        try:
            result = await self.handler.on_request(self, method, args)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if not isinstance(e, HubError):
                log.exception("%s: request %r failed", self.name, method)
            reply = encode_frame(M.error_response(rid, error_body(e)))
        else:
            try:
                reply = encode_frame(M.response(rid, result))
            except ProtocolError as e:
                log.error("%s: result of %r cannot be sent: %s", self.name, method, e)
                reply = encode_frame(M.error_response(rid, error_body(e)))
        if not self._closed:
            self._enqueue(reply, None, urgent=True)

    def _expire(self, rid: int, method: str, timeout: float) -> None:
        entry = self._pending.pop(rid, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(IpcTimeout(f"{self.name}: no answer to {method!r} within {timeout:g} s"))

    # -- closing ----------------------------------------------------------
    def close(self) -> None:
        """Close the link: pending requests fail, handler tasks are cancelled.

        Frames already queued get one last non-blocking send. Await
        `wait_closed()` to see the cancelled handler tasks finish.
        """
        if not self._closed:
            try:
                self._write_out()
            except OSError:
                pass
        self._abort(None)

    async def wait_closed(self) -> None:
        """Wait until the handler tasks cancelled by close() have ended."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _abort(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fileno)
        if self._writing:
            self._loop.remove_writer(self._fileno)
            self._writing = False
        self._sock.close()
        for seg in self._out:
            if seg.fd is not None:
                os.close(seg.fd)
        self._out.clear()
        self._queued = 0
        while self._in_fds:
            os.close(self._in_fds.popleft())
        reason = f"{self.name}: link closed" + (f" ({exc})" if exc is not None else "")
        pending, self._pending = self._pending, {}
        for fut, timer in pending.values():
            timer.cancel()
            if not fut.done():
                fut.set_exception(IpcError(reason))
        for task in self._tasks:
            task.cancel()
        try:
            self.handler.on_close(self, exc)
        except Exception:
            log.exception("%s: on_close handler failed", self.name)


# -- making links -----------------------------------------------------------
def socketpair_channels(a: IpcHandler, b: IpcHandler) -> tuple[IpcChannel, IpcChannel]:
    """Two connected channels in this process (tests, in-process links)."""
    sa, sb = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return IpcChannel(sa, a, name="pair-a"), IpcChannel(sb, b, name="pair-b")


async def connect_unix(path: str, handler: IpcHandler, *, name: str = "") -> IpcChannel:
    """Connect to a `serve_unix` listener; OSError if nobody listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, path)
    except BaseException:
        sock.close()
        raise
    return IpcChannel(sock, handler, name=name or f"to:{os.path.basename(path)}")


class IpcServer:
    """A Unix-socket listener that turns each connection into an IpcChannel."""

    def __init__(self, sock: socket.socket, handler_factory: Callable[[], IpcHandler],
                 on_connect: Callable[[IpcChannel], None] | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._factory = handler_factory
        self._on_connect = on_connect
        self.path: str = sock.getsockname()
        self._closed = False
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._on_accept)

    def _on_accept(self) -> None:
        for _ in range(64):  # bounded so a connect storm cannot starve the loop
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("accept on %s failed: %s", self.path, e)
                return
            ch = IpcChannel(conn, self._factory(), name=f"from:{os.path.basename(self.path)}")
            if self._on_connect is not None:
                self._on_connect(ch)

    def close(self) -> None:
        """Stop listening and remove the socket file; open channels stay."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    async def wait_closed(self) -> None:
        """For symmetry with asyncio.Server; closing is immediate."""


async def serve_unix(path: str, handler_factory: Callable[[], IpcHandler], *,
                     on_connect: Callable[[IpcChannel], None] | None = None,
                     backlog: int = 128) -> IpcServer:
    """Listen on `path` (replacing a stale socket file) for IPC links."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return IpcServer(sock, handler_factory, on_connect)
