"""The limit on the library's Redis calls in flight per event loop."""

from __future__ import annotations

import asyncio

from rohrpost_signals.core import inflight


async def test_calls_beyond_the_limit_wait_their_turn() -> None:
    in_flight = most = 0

    async def call() -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1

    await asyncio.gather(*(inflight.in_turn(call()) for _ in range(3 * inflight.MAX_IN_FLIGHT)))
    assert most == inflight.MAX_IN_FLIGHT


async def test_a_call_cancelled_while_waiting_never_starts() -> None:
    started = []

    async def call(n: int) -> None:
        started.append(n)
        await asyncio.sleep(3600)

    running = [
        asyncio.ensure_future(inflight.in_turn(call(n))) for n in range(inflight.MAX_IN_FLIGHT)
    ]
    waiting = asyncio.ensure_future(inflight.in_turn(call(-1)))
    await asyncio.sleep(0)  # one step each: the first take every slot, the last waits
    waiting.cancel()
    for task in running:
        task.cancel()
    await asyncio.wait([waiting, *running])
    assert -1 not in started
    assert len(started) == inflight.MAX_IN_FLIGHT
