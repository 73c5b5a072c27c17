"""The supervisor's connection to Redis: commands, one subscription, reconnects.

Commands fail fast (no client-side retries, a 2 s socket timeout, at most
16 connections with a 2 s wait for one): a caller that cannot reach Redis
learns it at once and answers 503 (`StoreUnavailable`). One task keeps the
subscription: it connects, subscribes, runs `on_up` (the owner's resync:
stores reloaded, streams registered again) and reads messages; when Redis
goes away it marks the link down and tries again, backing off from 0.2 s to
5 s. Live streams and players never wait for any of this.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ..errors import StoreUnavailable
from .settings import mask_url_password

log = logging.getLogger("hub.cluster")

BACKOFF_MIN = 0.2
BACKOFF_MAX = 5.0
COMMAND_TIMEOUT = 2.0  # connect, and each reply
MAX_CONNECTIONS = 16
POOL_WAIT = 2.0  # for a free connection
READ_WAIT = 1.0  # a subscription read returns at least this often
HEALTH_CHECK = 2  # seconds between PINGs on an idle connection

#: The errors that mean "Redis is not there" (the client's and the socket's).
LINK_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
#: Those, and the client's complaint about a connection closed under it.
CLOSE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError, RuntimeError)

MessageHandler = Callable[[str, bytes], None]


class PoolBusy(RedisConnectionError):
    """Every pooled connection stayed in use for POOL_WAIT: this node asks
    more than Redis answers just now (a burst of asks, a slow Redis). The
    command fails (503) like any other, but Redis is not away: the link
    stays up, with no reconnect and no resync of the stores."""


class _Pool(BlockingConnectionPool):
    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as e:
            # redis-py raises its ConnectionError from the wait's timeout;
            # a failed connect (Redis away) has another cause.
            if isinstance(e.__cause__, asyncio.TimeoutError) and not isinstance(e, PoolBusy):
                raise PoolBusy(f"no free Redis connection within {POOL_WAIT:g} s") from e
            raise


class RedisLink:
    def __init__(self, url: str, channels: list[str], on_message: MessageHandler,
                 on_up: Callable[[], Awaitable[None]]) -> None:
        self.url = url
        self.channels = channels
        self._on_message = on_message
        self._on_up = on_up
        pool = _Pool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT,
            socket_timeout=COMMAND_TIMEOUT, socket_connect_timeout=COMMAND_TIMEOUT,
            health_check_interval=HEALTH_CHECK, retry=Retry(NoBackoff(), 0))
        self.client: Redis = Redis(connection_pool=pool)
        self.up = False
        self._up = asyncio.Event()
        self._broken = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.outages = 0

    @property
    def masked(self) -> str:
        return mask_url_password(self.url)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="redis link")

    async def wait_up(self) -> None:
        await self._up.wait()

    def require(self) -> None:
        """Raise StoreUnavailable while Redis is away (a write is refused at once)."""
        if not self.up:
            raise StoreUnavailable()

    def broken(self, why: BaseException) -> None:
        """A command failed: reconnect the subscription (and resync on return),
        unless it only found no free connection (PoolBusy)."""
        if isinstance(why, PoolBusy):
            log.info("redis %s: %s", self.masked, why)
            return
        if self.up:
            log.warning("redis %s: %s", self.masked, why or type(why).__name__)
        self._broken = True

    def _set_up(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if up:
            self._up.set()
        else:
            self._up.clear()
            self.outages += 1

    async def _run(self) -> None:
        delay = BACKOFF_MIN
        said = False
        while not self._closing:
            pubsub = self.client.pubsub()
            try:
                # Connections pooled before an outage are dead: drop them all.
                await self.client.connection_pool.disconnect(inuse_connections=False)
                await self.client.ping()
                delay = BACKOFF_MIN  # it answers: a failure from here on is retried soon
                await pubsub.subscribe(*self.channels)
                self._broken = False
                self._set_up(True)
                await self._on_up()
                log.info("redis %s: connected", self.masked)
                said = False
                while not self._broken:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=READ_WAIT)
                    if msg is not None and msg.get("type") == "message":
                        self._dispatch(msg)
            except LINK_ERRORS as e:
                if self.up or not said:
                    log.warning("redis %s unreachable (%s); retrying with back-off", self.masked,
                                str(e) or type(e).__name__)
                    said = True
            finally:
                self._set_up(False)
                try:
                    await asyncio.wait_for(pubsub.aclose(), COMMAND_TIMEOUT)  # type: ignore[no-untyped-call]
                except CLOSE_ERRORS:
                    pass
            if self._closing:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        channel = msg.get("channel")
        data = msg.get("data")
        if not isinstance(channel, bytes) or not isinstance(data, bytes):
            return
        try:
            self._on_message(channel.decode(), data)
        except Exception:  # one bad message must not end the subscription
            log.exception("redis message on %s not handled", channel[:80])

    async def aclose(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await asyncio.wait_for(self.client.aclose(), COMMAND_TIMEOUT)
        except CLOSE_ERRORS:
            pass
