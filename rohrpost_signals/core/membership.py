"""Keep consumers alive through channel layer failures, with their groups joined.

Two things go wrong with a shared Redis, and the browser must notice neither:

* ``channel_layer.receive`` raises while Redis is unreachable. Channels lets
  that exception end the consumer, which closes the socket. :class:`LayerGuard`
  catches it instead: the consumer keeps its socket, waits with back-off and
  goes on receiving once the layer answers. Only connection and timeout
  errors (:func:`outage_errors`) are waited out, and only for
  ``LAYER_OUTAGE_TIMEOUT`` seconds; anything else a receive raises is a bug,
  logged with its traceback, and the socket is closed with 1011.
* Redis forgets group memberships: it restarted empty, a replica without them
  was promoted, or a membership outlived ``group_expiry``. A
  :class:`MembershipKeeper` per worker process (one per event loop and layer)
  keeps a marker key in Redis; when the marker has gone, after any layer error
  and well before ``group_expiry`` runs out, it joins every live consumer to
  its groups again. Joining a group twice is harmless.
* Every layer that expires memberships forgets a socket open longer than
  ``group_expiry``: channels-redis, and Channels' in-memory layer too. The
  keeper renews them the same way, with ``group_add``, on any such layer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from .. import _compat
from ..conf import conf
from . import lifecycle
from .dispatch import stats

logger = logging.getLogger("rohrpost_signals")

#: Seconds between two looks at each Redis shard's marker key.
CHECK_INTERVAL = 1.0
#: Back-off of a consumer whose layer ``receive`` failed: first and longest wait.
RETRY_FIRST = 0.1
RETRY_MAX = 5.0
# The marker outlives many missed checks: a busy loop must not look like a restart.
_MARKER_TTL = 120
# Renew memberships this many times per group_expiry, so none runs out.
_RENEWALS_PER_EXPIRY = 3
#: The close code of a socket whose layer receive failed for good (internal error).
INTERNAL_ERROR = 1011


@functools.cache
def timeout_errors() -> tuple[type[Exception], ...]:
    """The errors of a layer call that waited too long."""
    try:
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # channels-redis is an optional dependency
        return (TimeoutError, asyncio.TimeoutError)
    return (TimeoutError, asyncio.TimeoutError, RedisTimeoutError)


@functools.cache
def outage_errors() -> tuple[type[Exception], ...]:
    """The layer errors a socket waits out: a connection lost or refused, a timeout.

    ``OSError`` covers the built-in ``ConnectionError`` and ``TimeoutError``.
    redis-py, which channels-redis and its PubSub layer use, raises its own
    ``ConnectionError`` (with ``BusyLoadingError``, Redis loading its data
    after a restart, and a failed Sentinel look-up) and ``TimeoutError``,
    which are no ``OSError``. Channels' in-memory layer raises none of these.
    Anything else a layer call raises is a bug, not an outage.
    """
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # channels-redis is an optional dependency
        return (OSError, *timeout_errors())
    return (OSError, RedisConnectionError, *timeout_errors())


def _cancelling(task: asyncio.Task[Any] | None) -> bool:
    """Whether ``task`` was asked to stop (Python 3.11+ can tell)."""
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling and cancelling())


def _cancel_requested() -> bool:
    return _cancelling(asyncio.current_task())


def _log_bug(what: str, exc: BaseException) -> None:
    logger.error(
        "%s raised %s, which is not a connection or timeout error of the channel layer "
        "but a bug; closing the socket with %d.",
        what,
        type(exc).__name__,
        INTERNAL_ERROR,
        exc_info=exc,
    )


def _redis_core_layer(layer: Any) -> bool:
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # channels-redis is an optional dependency
        return False
    return bool(isinstance(layer, RedisChannelLayer))


#: A blocking read that ended with a timeout after at least this long was idle, not failing.
IDLE_READ_SECONDS = 1.0


def _idle_timeout(exc: Exception, waited: float) -> bool:
    """Whether ``exc`` ended a blocking read that simply found nothing to read.

    channels-redis waits up to 5 s for a message (``BZPOPMIN``), and redis-py
    8's default ``socket_timeout`` of 5 s can end that wait first: a normal
    idle period, read again at once. A timeout that comes quickly is a failure.
    """
    return waited >= IDLE_READ_SECONDS and isinstance(exc, timeout_errors())


class LayerGuard:
    """Consumer mixin: a layer failure never ends the consumer.

    Channels assigns ``channel_receive`` when the consumer starts; the
    property keeps that callable and hands Channels a guarded one instead.
    """

    channel_layer: Any
    channel_name: str
    subscriptions: set[str]
    _layer_receive: Callable[[], Awaitable[dict[str, Any]]]
    _receive_task: asyncio.Task[Any] | None
    _asgi_send: Callable[[dict[str, Any]], Awaitable[None]]
    _closing_for_good = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # The server's own send: the sync consumer's self.send cannot run on the loop.
        self._asgi_send = send
        await super().__call__(scope, receive, send)  # type: ignore[misc]

    def _take_layer_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._layer_receive = receive
        keeper_for(self.channel_layer).track(self)

    channel_receive = _compat.guard_channel_receive(
        lambda consumer, receive: consumer._take_layer_receive(receive),
        lambda consumer: consumer._guarded_receive,
    )

    async def _guarded_receive(self) -> dict[str, Any]:
        # The keeper ends this task should the layer swallow its cancellation.
        self._receive_task = asyncio.current_task()
        try:
            failure = self._take_failure()
            if failure is None:
                return await self._receive_through_outages()
        except asyncio.CancelledError:
            # Channels cancels the receive when the consumer ends; fail() does,
            # to close the socket from this task.
            failure = self._take_failure()
            if failure is None:
                keeper_for(self.channel_layer).untrack(self)
                raise
        return await self._close_for_good(failure)

    async def _receive_through_outages(self) -> dict[str, Any]:
        delay = RETRY_FIRST
        while True:
            started = time.monotonic()
            try:
                return await self._layer_receive()
            except Exception as exc:
                if _cancel_requested():
                    # The consumer is ending: its cancellation met a read timeout
                    # and came out as redis-py's TimeoutError. Retrying would
                    # keep the consumer, and the server waiting for it, forever.
                    raise asyncio.CancelledError from exc
                if not isinstance(exc, outage_errors()):
                    # Retried, a bug would look exactly like an outage, forever.
                    _log_bug("Channel layer receive", exc)
                    return await self._close_for_good(exc)
                idle = _idle_timeout(exc, time.monotonic() - started)
                keeper = keeper_for(self.channel_layer)
                if not idle:
                    keeper.failed("receive", exc)
                # Reads from a hung Redis time out as if idle, but the keeper's checks fail.
                if keeper.outage_too_long():
                    return await self._close_for_good(exc)
                if idle:
                    continue
            await keeper_for(self.channel_layer).wait_until_back(delay)
            delay = min(delay * 2, RETRY_MAX)

    def fail(self, what: str, exc: Exception) -> None:
        """A bug (not an outage) in ``what`` for this socket: log it, close with 1011.

        The keeper calls this; the consumer's receive task closes the socket.
        """
        _log_bug(what, exc)
        if self._closing_for_good:
            return  # closing already: a cancellation now would end the consumer early
        self.__dict__["_layer_failure"] = exc
        task = self.__dict__.get("_receive_task")
        if task is not None and not task.done():
            task.cancel()

    def _take_failure(self) -> Exception | None:
        """What fail() recorded, unless the consumer is ending anyway."""
        failure: Exception | None = self.__dict__.pop("_layer_failure", None)
        task = asyncio.current_task()
        # Take back fail()'s cancellation (Python 3.11+); one left is the server's.
        if failure is not None and task is not None and _cancelling(task) and task.uncancel():
            return None
        return failure

    async def _close_for_good(self, exc: Exception) -> dict[str, Any]:
        """Close the socket with 1011; the server's disconnect then ends the consumer."""
        self._closing_for_good = True
        keeper_for(self.channel_layer).untrack(self)
        try:
            await self._asgi_send({"type": "websocket.close", "code": INTERNAL_ERROR})
        except Exception:
            # daphne's WebSocket library (autobahn) refuses 1011 from an
            # application, but daphne closes with 1011 when the application
            # raises; the consumer's crash clean-up leaves its groups.
            raise exc from None
        # Nothing more comes from the layer: wait for websocket.disconnect,
        # which leaves the groups and ends the consumer (and cancels this).
        closed: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        return await closed

    def leave_later(self, group: str, exc: BaseException) -> None:
        """``group_discard`` failed (layer down): retry it when the layer is back."""
        if not isinstance(exc, outage_errors()):
            self.leave_failed(group, exc)  # a bug: retrying it would not help
            return
        keeper = keeper_for(self.channel_layer)
        keeper.failed("group_discard", exc)
        keeper.discard_later(group, self.channel_name)

    def leave_failed(self, group: str, exc: BaseException) -> None:
        """Sync consumers: log it; the membership runs out after ``group_expiry``."""
        stats.add("layer_errors")
        logger.warning(
            "Could not leave group %r (%s: %s); the membership expires after the "
            "layer's group_expiry.",
            group,
            type(exc).__name__,
            exc,
            # A bug, unlike an outage, is worth its traceback.
            exc_info=None if isinstance(exc, outage_errors()) else exc,
        )

    async def rejoin_groups(self) -> int:
        """Join every group of ``subscriptions`` again; returns how many."""
        joined = 0
        for group in list(getattr(self, "subscriptions", ())):
            await self.channel_layer.group_add(group, self.channel_name)
            joined += 1
            if group not in self.subscriptions:
                # Left while we were joining it: undo, or it would stay joined.
                await self.channel_layer.group_discard(group, self.channel_name)
        return joined


class MembershipKeeper:
    """The live consumers of one layer on one event loop, and their renewals."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.consumers: weakref.WeakSet[LayerGuard] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None
        self._redis = _redis_core_layer(layer)
        # Every layer that expires memberships (channels-redis, the in-memory
        # layer) gets them renewed: joining again with group_add resets the clock.
        self._expiry = float(getattr(layer, "group_expiry", 0) or 0)
        self._watching = self._redis or self._expiry > 0
        self._markers_set: set[int] = set()
        self._outage_since = 0.0  # > 0 while the layer is failing
        self._gave_up = False  # the outage outlasted LAYER_OUTAGE_TIMEOUT (logged)
        self._bug_logged = False  # the membership check failed with a bug (logged)
        self._back = asyncio.Event()  # set unless the layer is failing
        self._back.set()
        self._renewed_at = time.monotonic()
        #: True while ``rejoin_all`` runs after an outage or a data loss.
        self.after_outage = False
        # Memberships of closed sockets that could not be removed yet.
        self._discards: list[tuple[str, str]] = []

    def discard_later(self, group: str, channel: str) -> None:
        self._discards.append((group, channel))
        self._ensure_task()

    def track(self, consumer: LayerGuard) -> None:
        self.consumers.add(consumer)
        if self._watching:
            self._ensure_task()

    def untrack(self, consumer: LayerGuard) -> None:
        self.consumers.discard(consumer)

    def failed(self, what: str, exc: BaseException) -> None:
        """Count a layer error; the first of an outage is logged."""
        stats.add("layer_errors")
        if not self._outage_since:
            self._outage_since = time.monotonic()
            self._back.clear()
            logger.warning(
                "Channel layer %s failed (%s: %s); sockets stay open and rejoin their "
                "groups when it answers again.",
                what,
                type(exc).__name__,
                exc,
            )
        self._ensure_task()

    def outage_too_long(self) -> bool:
        """Whether the layer has failed for longer than ``LAYER_OUTAGE_TIMEOUT``.

        The first time in an outage it is logged: every socket of this
        process closes at its next attempt to receive.
        """
        if not self._outage_since:
            return False
        failing = time.monotonic() - self._outage_since
        if failing <= conf.LAYER_OUTAGE_TIMEOUT:
            return False
        if not self._gave_up:
            self._gave_up = True
            logger.error(
                "The channel layer has failed for %.0f s, longer than LAYER_OUTAGE_TIMEOUT "
                "(%g s); closing its sockets with %d so that the clients reconnect.",
                failing,
                conf.LAYER_OUTAGE_TIMEOUT,
                INTERNAL_ERROR,
            )
        return True

    async def wait_until_back(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less if the layer recovers meanwhile."""
        # Not wait_for: before Python 3.12 it drops a cancellation that meets
        # the event being set, and the consumer would never end.
        back = asyncio.ensure_future(self._back.wait())
        try:
            await asyncio.wait({back}, timeout=timeout)
        finally:
            back.cancel()

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            if self._task is None:
                lifecycle.at_server_stop(loop, self.stop)
            self._task = loop.create_task(self._run())

    async def stop(self) -> None:
        """End the task (the server stops); a later failure or consumer starts it again."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def _run(self) -> None:
        # Layers that neither expire memberships nor lose them need watching only after a failure.
        while (self._watching and self.consumers) or self._outage_since or self._discards:
            await asyncio.sleep(self._interval())
            self._end_stuck_receives()
            try:
                lost = await self._markers_lost() if self._redis else False
                if lost or self._outage_since or self._discards or self._renewal_due():
                    await self.rejoin_all(lost)
            except outage_errors() as exc:
                self.failed("membership check", exc)
            except Exception:
                # Not an outage, so not retried as one: logged until a check passes.
                if not self._bug_logged:
                    self._bug_logged = True
                    logger.exception("The channel layer membership check failed with a bug.")
            else:
                self._bug_logged = False

    def _end_stuck_receives(self) -> None:
        """Cancel again the layer receive of consumers that are ending.

        Before Python 3.12, ``asyncio.wait_for`` drops a cancellation that
        arrives as the awaited call completes; redis-py sends every command
        through it. A receive cancelled at that moment goes on waiting for
        messages in channels-redis' loop, the consumer waits for it in
        Channels' clean-up, and the server waits for the consumer: SIGTERM
        never finishes. Its socket has closed, or the task was cancelled
        (Python 3.11+ can tell): a second cancellation ends it.
        """
        for consumer in list(self.consumers):
            task = consumer.__dict__.get("_receive_task")
            if task is None or task.done():
                continue
            if getattr(consumer, "_socket_closed", False) or _cancelling(task):
                task.cancel()

    def _interval(self) -> float:
        # A short group_expiry (tests) needs looks more often than once a second.
        if self._expiry:
            return min(CHECK_INTERVAL, self._expiry / _RENEWALS_PER_EXPIRY / 2)
        return CHECK_INTERVAL

    def _renewal_due(self) -> bool:
        if not self._expiry:
            return False
        return time.monotonic() - self._renewed_at > self._expiry / _RENEWALS_PER_EXPIRY

    async def _markers_lost(self) -> bool:
        """Whether a shard lost this process's marker key (its data with it)."""
        key = f"{self.layer.prefix}:rps:worker:{_compat.layer_process_name(self.layer)}"
        lost = False
        for index in range(_compat.layer_shard_count(self.layer)):
            # GET then SET rather than SET ... GET, which needs Redis 6.2.
            pipe = _compat.layer_connection(self.layer, index).pipeline(transaction=False)
            pipe.get(key)
            pipe.set(key, b"1", ex=_MARKER_TTL)
            previous, _ = await pipe.execute()
            if previous is None and index in self._markers_set:
                lost = True
            self._markers_set.add(index)
        return lost

    async def rejoin_all(self, lost: bool = False) -> int:
        """Join every live consumer to its groups again; returns the memberships."""
        left = 0
        while self._discards:
            group, channel = self._discards[-1]
            try:
                await self.layer.group_discard(group, channel)
                left += 1
            except outage_errors():
                raise  # retried once the layer answers
            except Exception as exc:
                logger.error(
                    "Leaving group %r for a closed socket raised %s, which is not a connection "
                    "or timeout error; the membership expires after the layer's group_expiry.",
                    group,
                    type(exc).__name__,
                    exc_info=exc,
                )
            self._discards.pop()
        joined = 0
        # Consumers ask their policy again after an outage, not on a renewal.
        self.after_outage = bool(lost or self._outage_since)
        try:
            for consumer in list(self.consumers):
                try:
                    joined += await consumer.rejoin_groups()
                except outage_errors():
                    raise  # every socket tries again at the next check
                except Exception as exc:
                    # One socket's bug must not hold the others' rejoin back.
                    self.untrack(consumer)
                    consumer.fail("Rejoining a socket's groups", exc)
        finally:
            self.after_outage = False
        outage = self._outage_since
        self._outage_since = 0.0
        self._gave_up = False
        self._back.set()
        self._renewed_at = time.monotonic()
        if lost or outage:
            stats.add("rejoins")
            reason = "Redis lost its data" if lost else "the channel layer is back"
            logger.warning(
                "Rejoined %d group memberships of %d sockets (and left %d of closed ones): %s.",
                joined,
                len(self.consumers),
                left,
                reason,
            )
        return joined


_keepers: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[int, tuple[Any, MembershipKeeper]]
] = weakref.WeakKeyDictionary()


def keeper_for(layer: Any) -> MembershipKeeper:
    """The keeper of ``layer`` on the running event loop."""
    by_layer = _keepers.setdefault(asyncio.get_running_loop(), {})
    entry = by_layer.get(id(layer))
    if entry is None or entry[0] is not layer:
        entry = by_layer[id(layer)] = (layer, MembershipKeeper(layer))
    return entry[1]
