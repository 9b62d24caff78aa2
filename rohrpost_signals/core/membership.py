"""Keep consumers alive through channel layer failures, with their groups joined.

Two things go wrong with a shared Redis, and the browser must notice neither:

* ``channel_layer.receive`` raises while Redis is unreachable. Channels lets
  that exception end the consumer, which closes the socket. :class:`LayerGuard`
  catches it instead: the consumer keeps its socket, waits with back-off and
  goes on receiving once the layer answers.
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
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from .. import _compat
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


def _cancelling(task: asyncio.Task[Any] | None) -> bool:
    """Whether ``task`` was asked to stop (Python 3.11+ can tell)."""
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling and cancelling())


def _cancel_requested() -> bool:
    return _cancelling(asyncio.current_task())


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
    if waited < IDLE_READ_SECONDS:
        return False
    if isinstance(exc, TimeoutError):
        return True
    try:
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # channels-redis is an optional dependency
        return False
    return isinstance(exc, RedisTimeoutError)


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
        delay = RETRY_FIRST
        while True:
            started = time.monotonic()
            try:
                return await self._layer_receive()
            except asyncio.CancelledError:
                # Channels cancels the receive only when the consumer ends.
                keeper_for(self.channel_layer).untrack(self)
                raise
            except Exception as exc:
                if _cancel_requested():
                    # The consumer is ending: its cancellation met a read timeout
                    # and came out as redis-py's TimeoutError. Retrying would
                    # keep the consumer, and the server waiting for it, forever.
                    keeper_for(self.channel_layer).untrack(self)
                    raise asyncio.CancelledError from exc
                if _idle_timeout(exc, time.monotonic() - started):
                    continue
                keeper_for(self.channel_layer).failed("receive", exc)
            await keeper_for(self.channel_layer).wait_until_back(delay)
            delay = min(delay * 2, RETRY_MAX)

    def leave_later(self, group: str, exc: BaseException) -> None:
        """``group_discard`` failed (layer down): retry it when the layer is back."""
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
            except Exception as exc:
                self.failed("membership check", exc)

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
            await self.layer.group_discard(*self._discards[-1])
            self._discards.pop()
            left += 1
        joined = 0
        # Consumers ask their policy again after an outage, not on a renewal.
        self.after_outage = bool(lost or self._outage_since)
        try:
            for consumer in list(self.consumers):
                joined += await consumer.rejoin_groups()
        finally:
            self.after_outage = False
        outage = self._outage_since
        self._outage_since = 0.0
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
