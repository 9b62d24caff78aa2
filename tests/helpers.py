"""Shared test helpers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from rohrpost_signals.core import dispatch


class GroupListener:
    """A channel joined to groups of the real configured layer, read from sync code."""

    def __init__(self, *groups: str) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        for group in groups:
            async_to_sync(self.layer.group_add)(group, self.channel)

    def messages(self, timeout: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrived, decoded; waits ``timeout`` for stragglers."""
        assert dispatch.flush(timeout=5), "messages still queued for the layer"

        async def drain() -> list[dict[str, Any]]:
            import asyncio

            received = []
            while True:
                try:
                    event = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
                except asyncio.TimeoutError:
                    return received
                assert event["type"] == "rohrpost.message"
                received.append(json.loads(event["message"]))

        return async_to_sync(drain)()


#: Generous on purpose: it only decides how long a broken test hangs, never
#: whether a working one passes on a busy machine.
DEFAULT_DEADLINE = 30.0


def eventually(
    condition: Callable[[], Any], timeout: float = DEFAULT_DEADLINE, what: str = ""
) -> Any:
    """Wait until ``condition()`` is truthy and return its value.

    Use it wherever a test waits for something another thread or process
    does, instead of a fixed ``sleep`` before an assertion. The check backs
    off from 5 ms to 100 ms; the deadline fails only a test that would hang.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


async def aeventually(
    condition: Callable[[], Any | Awaitable[Any]],
    timeout: float = DEFAULT_DEADLINE,
    what: str = "",
) -> Any:
    """Async twin of :func:`eventually`; ``condition`` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
