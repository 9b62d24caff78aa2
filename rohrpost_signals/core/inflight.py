"""At most :data:`MAX_IN_FLIGHT` of the library's Redis calls at once, per event loop.

redis-py 8 gives each connection pool 100 connections and raises
``MaxConnectionsError`` for the 101st call instead of waiting; channels-redis
uses that default. A worker that many browsers reconnect to at once would
otherwise fire a join, a history read and a leave per socket side by side,
and everything past the pool's size fails: subscribes answered
``unavailable``, the sockets' own layer receive failing with them. Calls
beyond the limit wait their turn instead; the sender's group sends take
turns from the same slots.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Awaitable
from typing import TypeVar

#: Well under a pool's 100 connections: the layer's receive, the head check
#: and the application's own calls need some too.
MAX_IN_FLIGHT = 32

_T = TypeVar("_T")

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slots_here() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(MAX_IN_FLIGHT)
    return slots


async def in_turn(call: Awaitable[_T]) -> _T:
    """Await ``call`` once fewer than ``MAX_IN_FLIGHT`` others are in flight."""
    slots = _slots_here()
    try:
        await slots.acquire()
    except BaseException:
        if inspect.iscoroutine(call):
            call.close()  # cancelled while waiting: it never started
        raise
    try:
        return await call
    finally:
        slots.release()
