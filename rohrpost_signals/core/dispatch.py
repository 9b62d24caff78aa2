"""Hand encoded messages to the channel layer without blocking the caller.

Calling ``async_to_sync(layer.group_send)`` per save costs a fresh event loop
(and with Redis a fresh connection) every time. Instead every message is
queued to a long-lived sender task:

* inside an ASGI server (a sync view or ``database_sync_to_async`` thread, or
  async code) the server's own event loop sends it, which the in-memory layer
  requires;
* anywhere else (management commands, task workers, scripts) one background
  thread runs an event loop for the whole process.

Queuing costs microseconds; sending failures are logged and counted, never
raised into ``save()``. ``flush()`` waits for queued messages (tests, and at
interpreter exit so nothing queued is lost on a normal exit).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import heapq
import itertools
import json
import logging
import os
import threading
import time
import typing
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from channels.layers import get_channel_layer

from .. import _compat
from ..conf import conf
from . import hints, history, inflight, lifecycle
from .failurelog import FailureLog

logger = logging.getLogger("rohrpost_signals")

EVENT_TYPE = "rohrpost.message"


class Outgoing(NamedTuple):
    """One encoded message for one group; ``origin`` names its source in logs.

    ``sequenced`` holds the text split around its ``seq`` value: the sender
    numbers the message and records it in the group's history. Another
    ``event_type`` makes it a control event for the consumers (never sent to
    a client): ``text`` is then the JSON object of the event's fields.
    """

    layer_alias: str
    group: str
    text: str
    origin: str
    sequenced: tuple[str, str] | None = None
    event_type: str = EVENT_TYPE


CounterName = Literal[
    "queued", "sent", "failed", "dropped", "layer_errors", "layer_dropped", "rejoins"
]


@dataclass
class Stats:
    """Counters an operator can read (``rohrpost_signals.dispatch.stats``).

    Several threads count at once (the sender, consumers, ``save()`` callers):
    change them with ``add()`` and ``error()``, which hold a lock; read them
    as attributes or all at once with ``as_dict()``. Tests may ``reset()``
    them.
    """

    queued: int = 0
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    #: Consumers' channel layer calls that failed (Redis unreachable); see ``membership``.
    layer_errors: int = 0
    #: Worker queues channels-redis skipped in a group send because they were over ``capacity``.
    layer_dropped: int = 0
    #: Times this process joined its sockets to their groups again after a layer outage.
    rejoins: int = 0
    last_error: str = ""
    last_error_at: float = 0.0
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def add(self, name: CounterName, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def error(self, text: str) -> None:
        """Count a failed send and remember it as the last error."""
        with self._lock:
            self.failed += 1
            self.last_error = text
            self.last_error_at = time.time()

    def reset(self) -> None:
        """Set every counter back to zero (for tests)."""
        with self._lock:
            for name in typing.get_args(CounterName):
                setattr(self, name, 0)
            self.last_error = ""
            self.last_error_at = 0.0

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            counters: dict[str, Any] = {
                name: getattr(self, name) for name in typing.get_args(CounterName)
            }
            counters["last_error"] = self.last_error
        return counters


#: The process's counters: ``queued``, ``sent``, ``failed``, ``dropped``, ``last_error``.
stats = Stats()

#: Failures are logged once per interval with counts, not once per message.
failed_log = FailureLog("failed")
dropped_log = FailureLog("were dropped (the sender queue was full)")

#: Callables that see every message before it is queued (the test capture helper).
interceptors: list[Callable[[Outgoing], bool]] = []


#: Seconds the background sender stays awake after draining its queue. While
#: saves keep coming (a loop in a command or task), they are then sent in
#: batches, and ``save()`` pays no wake-up of the sender thread per message;
#: a message that arrives during the pause waits at most this long.
BACKGROUND_LINGER = 0.002


class LoopSender:
    """A queue drained in order by one task on one event loop.

    With ``linger``, the task stays awake that long after draining the queue:
    messages pushed meanwhile need no cross-thread wake-up (a socket write and
    a GIL hand-off each), so a burst of saves is sent in batches.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, linger: float = 0.0) -> None:
        self.loop = loop
        self.linger = linger
        self.queue: deque[Outgoing] = deque()
        self._submitted = itertools.count(1)
        self.submitted = 0
        self.completed = 0
        # Flushes wait on futures that the sender resolves as it completes
        # messages: (mark, tie-breaker, future), smallest mark first.
        self._progress_lock = threading.Lock()
        self._waiters: list[tuple[int, int, concurrent.futures.Future[None]]] = []
        self._tie = itertools.count()
        self.idle = True
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # Runs on self.loop.
    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            if self._task is None:
                lifecycle.at_server_stop(self.loop, self.stop)
            self._wakeup = asyncio.Event()
            self._task = self.loop.create_task(self._run())

    async def stop(self) -> None:
        """End the task after it handed the layer what is queued (the server stops)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    def push(self, item: Outgoing) -> None:
        """Queue ``item``; safe from any thread."""
        # The limit is at least 1 (system check), so an empty queue skips the settings lookup.
        if self.queue and len(self.queue) >= conf.MAX_PENDING_MESSAGES:
            stats.add("dropped")
            dropped_log.record(
                item.group,
                f"Dropped {item.origin} for group {item.group!r}: "
                f"{len(self.queue)} messages already wait for the channel layer",
            )
            return
        self.submitted = next(self._submitted)
        self.queue.append(item)
        if self.idle:
            self.idle = False
            if _running_loop() is self.loop:
                self._wake()
            else:
                self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._ensure_task()
        assert self._wakeup is not None
        self._wakeup.set()

    async def _run(self) -> None:
        try:
            await self._serve()
        except asyncio.CancelledError:
            # The event loop is closing (asyncio.run cancels what is left once
            # the server returned, or the server stopped us): send what is queued.
            if self.queue:
                await lifecycle.within(self._drain(), lifecycle.STOP_SECONDS)
            if self.queue:
                logger.error(
                    "%d rohrpost messages were still queued when the event loop stopped.",
                    len(self.queue),
                )
            raise

    async def _drain(self) -> None:
        while self.queue:
            batch = [self.queue.popleft()]
            while self.queue and len(batch) < MAX_BATCH:
                batch.append(self.queue.popleft())
            await _send_batch(batch)
            self._advance(len(batch))

    async def _serve(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            await self._drain()
            if self.linger:
                await asyncio.sleep(self.linger)
                if self.queue:
                    continue
            self.idle = True
            if self.queue:  # pushed between the drain and setting idle
                self.idle = False
                continue
            await wakeup.wait()
            wakeup.clear()

    def pending(self) -> int:
        return self.submitted - self.completed

    def when_completed(self, mark: int) -> concurrent.futures.Future[None]:
        """A future resolved once the first ``mark`` messages were sent (or failed)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._progress_lock:
            if self.completed >= mark:
                future.set_result(None)
            else:
                heapq.heappush(self._waiters, (mark, next(self._tie), future))
        return future

    def _advance(self, count: int) -> None:
        ready = []
        with self._progress_lock:
            self.completed += count
            while self._waiters and self._waiters[0][0] <= self.completed:
                ready.append(heapq.heappop(self._waiters)[2])
        for future in ready:
            if not future.done():
                future.set_result(None)


#: Messages taken from the queue at once. Their groups are sent to
#: concurrently, each group's messages one after the other in queue order, so
#: a writer is not held to one Redis round trip after another.
MAX_BATCH = 64


async def _send_batch(batch: list[Outgoing]) -> None:
    if len(batch) == 1:
        await _send(batch[0])
        return
    by_group: dict[str, list[Outgoing]] = {}
    for item in batch:
        by_group.setdefault(item.group, []).append(item)
    await asyncio.gather(*(_send_in_order(items) for items in by_group.values()))


async def _send_in_order(items: list[Outgoing]) -> None:
    for item in items:
        await _send(item)


async def _send(item: Outgoing) -> None:
    await inflight.in_turn(_send_now(item))


async def _send_now(item: Outgoing) -> None:
    try:
        layer = get_channel_layer(item.layer_alias)
        if layer is None:
            raise RuntimeError(f"no channel layer configured for alias {item.layer_alias!r}")
        event: dict[str, Any]
        if item.event_type != EVENT_TYPE:
            event = {**json.loads(item.text), "type": item.event_type}
        else:
            # The group lets a consumer drop what arrives after it was refused the group.
            event = {"type": EVENT_TYPE, "message": item.text, "group": item.group}
        if item.sequenced is not None:
            head, tail = item.sequenced
            seq, epoch, event["message"] = await history.store_for(item.layer_alias).append(
                item.group, head, tail
            )
            # Consumers use these to find gaps and duplicates (see ``repair``).
            event["seq"] = seq
            event["epoch"] = epoch
        await layer.group_send(item.group, event)
        hints.after_send(layer, item.group, item.origin)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        stats.error(error)
        failed_log.record(
            item.group,
            f"Could not send {item.origin} to group {item.group!r} through channel layer "
            f"{item.layer_alias!r}: {error}",
        )
    else:
        stats.add("sent")


# Unlike get_running_loop(), no exception to raise and catch on every save.
_running_loop = _compat.running_loop


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of the ASGI server whose sync thread we run in, if any."""
    return _compat.running_loop() or _compat.server_loop_of_sync_thread()


@dataclass
class _BackgroundLoop:
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    sender: LoopSender = field(init=False)

    def __post_init__(self) -> None:
        self.sender = LoopSender(self.loop, linger=BACKGROUND_LINGER)


class Dispatcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._background: _BackgroundLoop | None = None
        self._background_pid = 0
        self._loop_senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopSender] = (
            weakref.WeakKeyDictionary()
        )

    def submit(self, item: Outgoing) -> None:
        stats.add("queued")
        if interceptors:
            for intercept in list(interceptors):
                if intercept(item):
                    return
        loop = _server_loop()
        sender = self._sender_for(loop) if loop is not None else self._background_sender()
        sender.push(item)

    def _sender_for(self, loop: asyncio.AbstractEventLoop) -> LoopSender:
        sender = self._loop_senders.get(loop)
        if sender is None:
            with self._lock:
                sender = self._loop_senders.get(loop)
                if sender is None:
                    sender = self._loop_senders[loop] = LoopSender(loop)
        return sender

    def _background_sender(self) -> LoopSender:
        background = self._background
        if background is None or self._background_pid != os.getpid():
            with self._lock:
                background = self._background
                if background is None or self._background_pid != os.getpid():
                    background = self._start_background()
        return background.sender

    def _start_background(self) -> _BackgroundLoop:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name="rohrpost-signals-sender", daemon=True
        )
        background = _BackgroundLoop(loop=loop, thread=thread)
        thread.start()
        self._background = background
        self._background_pid = os.getpid()
        # Only a process that sends from this thread has anything to flush at exit.
        atexit.register(_flush_at_exit)
        return background

    def senders(self) -> list[LoopSender]:
        found = [s for s in list(self._loop_senders.values()) if not s.loop.is_closed()]
        if self._background is not None and self._background_pid == os.getpid():
            found.append(self._background.sender)
        return found

    def pending(self) -> int:
        return sum(sender.pending() for sender in self.senders())

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued message was handed to the layer (or failed).

        Returns False if messages were still waiting after ``timeout`` seconds.
        Do not call it from the event loop thread that sends them; await
        :func:`aflush` there.
        """
        here = _running_loop()
        if any(sender.loop is here for sender in self.senders()):
            raise RuntimeError("flush() would block the loop that sends; use aflush()")
        futures = self._completion_futures()
        if futures is None:
            return False
        _done, not_done = concurrent.futures.wait(futures, timeout=timeout)
        return not not_done

    async def aflush(self, timeout: float = 5.0) -> bool:
        """Async twin of :meth:`flush`, usable on the sending loop itself."""
        futures = self._completion_futures()
        if futures is None:
            return False
        if not futures:
            return True
        _done, not_done = await asyncio.wait(
            [asyncio.wrap_future(future) for future in futures], timeout=timeout
        )
        return not not_done

    def _completion_futures(self) -> list[concurrent.futures.Future[None]] | None:
        """One future per sender with work queued so far; None if one can never finish."""
        futures = []
        for sender in self.senders():
            mark = sender.submitted
            if sender.completed >= mark:
                continue
            if not sender.loop.is_running():
                return None  # its loop ended: those messages will never go out
            futures.append(sender.when_completed(mark))
        return futures


dispatcher = Dispatcher()


def submit(item: Outgoing) -> None:
    dispatcher.submit(item)


def flush(timeout: float = 5.0) -> bool:
    """Wait until every message queued so far was handed to the layer (or failed).

    Returns False if some were still waiting after ``timeout`` seconds. From
    the event loop that sends them, await :func:`aflush` instead.
    """
    return dispatcher.flush(timeout)


async def aflush(timeout: float = 5.0) -> bool:
    """Async twin of :func:`flush`, usable on the sending loop itself."""
    return await dispatcher.aflush(timeout)


#: At exit, give up on queued messages once the sender made no progress for this long.
EXIT_STALL_SECONDS = 5.0


def _flush_at_exit() -> None:
    background = dispatcher._background
    if background is None or dispatcher._background_pid != os.getpid():
        return
    sender = background.sender
    # A burst of saves can queue more than a slow layer sends in a few seconds:
    # keep waiting while messages still go out, stop only when the sender stalls.
    while True:
        done_before = sender.completed
        if dispatcher.flush(timeout=EXIT_STALL_SECONDS):
            return
        if sender.completed == done_before:
            break
    logger.error("%d rohrpost messages were still queued at exit.", sender.pending())
