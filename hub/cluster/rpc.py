"""Requests between nodes, carried by Redis pub/sub.

Each node subscribes to `hub:rpc:<its name>`; a request published there is
answered on the asker's channel. That is how a node lists another's streams
and consumers, forwards a DELETE to the node that owns a stream or holds a
player, and tells a node that its stream was taken over. Nodes never open
connections to each other for this: Redis is the only thing they share,
besides the RTSP relays themselves.

Bounded: at most `MAX_PENDING` requests of ours wait for answers (each for
at most its timeout) and at most `MAX_SERVING` of others' run here at once
(more are answered "busy" while fewer than `MAX_SERVING` answers are on
their way, else dropped: the asker times out); at most `MAX_ANSWERING`
answers are on their way at once (Redis slow: more are dropped); a message
over `MAX_MESSAGE` is dropped.
A request to a node nobody listens for fails at once (PUBLISH reached no one).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any, Awaitable, Callable

from ..errors import HubError, NotFound, ServiceUnavailable
from ..ipc.remote import error_body, remote_error
from . import keys as K
from .link import LINK_ERRORS, RedisLink

log = logging.getLogger("hub.cluster.rpc")

RPC_TIMEOUT = 3.0
MAX_PENDING = 256
MAX_SERVING = 64
MAX_ANSWERING = 2 * MAX_SERVING
MAX_MESSAGE = 16 << 20

#: (op, args) -> result; raise HubError for an error answer.
Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class NodeRpc:
    def __init__(self, link: RedisLink, node: str, inst: str, handler: Handler) -> None:
        self.link = link
        self.node = node
        self._handler = handler
        self._ids = itertools.count(1)
        self._prefix = inst
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self._answering: set[asyncio.Task[None]] = set()

    @property
    def channel(self) -> str:
        return K.rpc_channel(self.node)

    async def call(self, node: str, op: str, args: dict[str, Any], timeout: float = RPC_TIMEOUT) -> Any:
        """Ask `node`; its answer, or the HubError it raised (NotFound when it
        does not listen, ServiceUnavailable when it does not answer in time)."""
        self.link.require()
        if len(self._pending) >= MAX_PENDING:
            raise ServiceUnavailable("too many requests to other nodes in flight")
        rid = f"{self._prefix}-{next(self._ids)}"
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._publish(node, {"id": rid, "from": self.node, "op": op, "a": args})
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise ServiceUnavailable(f"node {node} did not answer {op} within {timeout:g} s") from None
        finally:
            self._pending.pop(rid, None)

    def notify(self, node: str, op: str, args: dict[str, Any]) -> None:
        """A request without an answer (a takeover); lost if Redis is away."""
        task = asyncio.get_running_loop().create_task(self._notify(node, op, args), name=f"rpc {op}")
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _notify(self, node: str, op: str, args: dict[str, Any]) -> None:
        try:
            await self._publish(node, {"from": self.node, "op": op, "a": args})
        except HubError as e:
            log.info("could not tell node %s %s: %s", node, op, e)

    async def _publish(self, node: str, msg: dict[str, Any]) -> None:
        try:
            heard = await self.link.client.publish(K.rpc_channel(node), K.dumps(msg))
        except LINK_ERRORS as e:
            self.link.broken(e)
            raise ServiceUnavailable(f"cannot reach node {node}: Redis is away") from None
        if not heard:
            raise NotFound(f"node {node} is not listening")

    # -- messages on our channel --------------------------------------------------------
    def on_message(self, data: bytes) -> None:
        if len(data) > MAX_MESSAGE:
            log.warning("dropped a %d-byte message between nodes", len(data))
            return
        try:
            msg = json.loads(data)
        except ValueError:
            log.warning("unreadable message between nodes: %r", data[:80])
            return
        if not isinstance(msg, dict):
            return
        if "re" in msg:
            fut = self._pending.get(str(msg["re"]))
            if fut is not None and not fut.done():
                if isinstance(msg.get("e"), dict):
                    fut.set_exception(remote_error(msg["e"]))
                else:
                    fut.set_result(msg.get("r"))
            return
        op, asker, args = msg.get("op"), msg.get("from"), msg.get("a")
        if not isinstance(op, str) or not isinstance(asker, str) or not isinstance(args, dict):
            return
        rid = msg.get("id")
        if len(self._serving) >= MAX_SERVING:
            if rid is not None and len(self._answering) < MAX_SERVING:  # a flood gets silence, not a task each
                self._answer(asker, {"re": rid, "e": error_body(ServiceUnavailable("node busy"))})
            return
        task = asyncio.get_running_loop().create_task(self._serve(asker, rid, op, args), name=f"serve {op}")
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, asker: str, rid: Any, op: str, args: dict[str, Any]) -> None:
        try:
            reply: dict[str, Any] = {"re": rid, "r": await self._handler(op, args)}
        except Exception as e:  # the asker learns what went wrong, as over IPC
            if not isinstance(e, HubError):
                log.exception("request %s from node %s failed", op, asker)
            reply = {"re": rid, "e": error_body(e)}
        if rid is not None:
            self._answer(asker, reply)

    def _answer(self, asker: str, reply: dict[str, Any]) -> None:
        if len(self._answering) >= MAX_ANSWERING:
            log.info("dropped an answer to node %s: %d answers on their way", asker, len(self._answering))
            return
        text = K.dumps(reply)
        if len(text) > MAX_MESSAGE:
            text = K.dumps({"re": reply["re"], "e": error_body(ServiceUnavailable("answer too large"))})
        task = asyncio.get_running_loop().create_task(self._send(asker, text), name="rpc answer")
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _send(self, asker: str, text: str) -> None:
        try:
            await self.link.client.publish(K.rpc_channel(asker), text)
        except LINK_ERRORS as e:
            log.info("could not answer node %s: %s", asker, e)

    async def aclose(self) -> None:
        tasks = [*self._serving, *self._answering]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
