"""Stop with the server: sockets told, memberships left, background tasks ended.

Every deploy, ``systemctl stop`` and Kubernetes rollout ends a worker with
SIGTERM. The servers' own handling of it stays in charge; this module fills
in what each leaves to the application:

* uvicorn closes every WebSocket itself with 1012 (service restart), hands
  each consumer ``websocket.disconnect`` (it leaves its groups as on any
  disconnect), then waits for every consumer to return before it exits.
* daphne (Twisted) cancels every application instance before the reactor
  stops and never delivers ``websocket.disconnect``. :class:`StopWithServer`
  catches that cancellation: it sends the client a close frame (1001, going
  away) while daphne can still write it, and leaves the socket's groups. The
  same happens to a consumer that any server cancels, such as uvicorn after
  ``--timeout-graceful-shutdown``.
* Background tasks (the sender of queued messages, the membership keeper)
  stop with the event loop. ``asyncio.run`` (uvicorn, hypercorn) cancels
  what is left on the loop once the server returns, and each task ends on
  that cancellation, the sender after handing the layer what it holds. Under
  Twisted the loop merely stops, so :func:`at_server_stop` registers a
  "before shutdown" trigger with the reactor that stops them first.

No signal handler is installed: the servers own SIGTERM and SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from .. import _compat

logger = logging.getLogger("rohrpost_signals")

#: What a consumer or a background task may take to finish once the server
#: stops it: servers and orchestrators allow a few seconds in all.
STOP_SECONDS = 2.0
#: The close code sent when the server goes away under an open socket.
GOING_AWAY = 1001
NORMAL_CLOSURE = 1000

Stopper = Callable[[], Awaitable[None]]


async def within(awaitable: Awaitable[Any], seconds: float) -> bool:
    """Run ``awaitable`` for at most ``seconds``; whether it finished.

    It runs in a task of its own, so a cancellation of the caller (a server
    that cancels twice) leaves it to finish in the background.
    """
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("Stopping failed: %r", task.exception())
        return True
    task.cancel()
    return False


class StopWithServer:
    """Consumer mixin: a consumer the server cancels closes its socket and leaves its groups.

    Channels ends a consumer without calling ``disconnect`` when its task is
    cancelled, which is how daphne stops: without this, every membership of
    every socket stays in the layer until ``group_expiry`` (a day by default),
    and each later group send to it fills a dead queue.
    """

    channel_layer: Any
    channel_name: str
    subscriptions: set[str]
    _socket_closed = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def receive_noting_close() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message.get("type") == "websocket.disconnect":
                self._socket_closed = True
            return message

        task = asyncio.current_task()
        if task is not None:
            _loop_state(task.get_loop()).consumers.add(task)
        try:
            await super().__call__(scope, receive_noting_close, send)  # type: ignore[misc]
        except asyncio.CancelledError:
            await within(self._stopped_by_server(send), STOP_SECONDS)
            raise

    def _note_leaving(self, group: str) -> None:
        # Until the layer confirms it, a stop leaves ``group`` again.
        self.__dict__.setdefault("_leaving", set()).add(group)

    def _note_left(self, group: str) -> None:
        self.__dict__.get("_leaving", set()).discard(group)

    async def _stopped_by_server(self, send: Any) -> None:
        if not self._socket_closed:
            # The server still has the connection (daphne writes it before the
            # reactor stops): tell the client, so it reconnects at once.
            try:
                await send({"type": "websocket.close", "code": GOING_AWAY})
            except Exception:
                # daphne's WebSocket library (autobahn) accepts only 1000 and
                # 3000-4999 from applications: a normal closure then.
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": NORMAL_CLOSURE})
        layer, channel = self.channel_layer, getattr(self, "channel_name", None)
        if layer is None or channel is None:
            return
        groups = set(getattr(self, "subscriptions", ())) | self.__dict__.get("_leaving", set())
        # The groups authorization joins every socket to (lifetime.py).
        groups |= set(getattr(self, "_control_groups", ()))
        results = await asyncio.gather(
            *(layer.group_discard(group, channel) for group in groups), return_exceptions=True
        )
        failed = [g for g, r in zip(groups, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            logger.warning(
                "Could not leave %d groups while the server stopped; those memberships "
                "expire after the layer's group_expiry.",
                len(failed),
            )


class _LoopState:
    """What stops with the server on one event loop."""

    def __init__(self) -> None:
        self.stoppers: list[Stopper] = []
        self.consumers: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()

    async def stop_all(self) -> None:
        # Consumers first: they may still send and leave groups. daphne waits
        # only until the first cancelled consumer ended (asyncio.gather), so
        # this waits for all of them.
        running = [task for task in self.consumers if not task.done()]
        if running:
            await asyncio.wait(running, timeout=STOP_SECONDS)
        await asyncio.gather(*(within(stop(), STOP_SECONDS) for stop in self.stoppers))


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
    weakref.WeakKeyDictionary()
)


def _loop_state(loop: asyncio.AbstractEventLoop) -> _LoopState:
    state = _loops.get(loop)
    if state is None:
        state = _loops[loop] = _LoopState()
        _hook_twisted(loop, state)
    return state


def at_server_stop(loop: asyncio.AbstractEventLoop, stop: Stopper) -> None:
    """Call ``stop()`` on ``loop`` when a server that would not cancel it stops.

    ``stop`` must also be safe to skip: where the server's loop cancels its
    tasks (``asyncio.run``), that cancellation is the stop.
    """
    _loop_state(loop).stoppers.append(stop)


def _hook_twisted(loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
    # Only if the application runs under Twisted's asyncio reactor (daphne):
    # never import Twisted, which would install a reactor as a side effect.
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or _compat.reactor_event_loop(reactor) is not loop:
        return

    def before_shutdown() -> Any:
        from twisted.internet.defer import Deferred

        return Deferred.fromFuture(loop.create_task(state.stop_all()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
