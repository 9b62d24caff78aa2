"""Bad input at scale: 100 clients x 1,000 malformed frames while others work normally."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from .clients import (
    Client,
    Write,
    check_delivery,
    close_all,
    expected_by_group,
    settle,
    start_all,
    wait_for_deliveries,
    wait_until,
)
from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

ATTACKERS = 100
FRAMES = 1000
NORMAL = 20  # half on each worker, each with an order of its own and a shared one
ROUNDS = 20

# One of each kind of bad frame; every one must get exactly one error reply.
BAD_FRAMES: list[str | bytes] = [
    "this is not JSON",
    "[1, 2, 3]",
    '"a string"',
    '{"type": "ping"}',
    '{"id": 1}',
    '{"id": {"no": "objects"}, "type": "ping"}',
    '{"id": 2, "type": 17}',
    '{"id": 3, "type": "no-such-handler"}',
    '{"id": 4, "type": "subscribe", "data": {"group": "not a valid group!"}}',
    '{"id": 5, "type": "subscribe", "data": {"group": "no-model-makes-this-1"}}',
    '{"id": 6, "type": "subscribe", "data": {"group": "order-1", "since": -1}}',
    '{"id": 7, "type": "unsubscribe"}',
    b"\x00\xffbinary",
    '{"id": 8, "type": "ping", "data": "' + "x" * 70_000 + '"}',  # over MAX_MESSAGE_BYTES
]


def frames(n: int) -> list[str | bytes]:
    """``n`` bad frames, the oversized one rarely (it is 70 kB)."""
    small = [f for f in BAD_FRAMES if len(f) < 1000]
    big = [f for f in BAD_FRAMES if len(f) >= 1000]
    return [big[0] if i % 100 == 99 else small[i % len(small)] for i in range(n)]


async def attack(client: Client, payload: list[str | bytes]) -> None:
    assert client.ws is not None
    for frame in payload:
        await client.ws.send(frame)


async def test_malformed_frames_at_scale(
    shared_redis_cluster: Cluster, measured: Callable[[str], None]
) -> None:
    cluster = shared_redis_cluster
    workers = [cluster.worker("uvicorn"), cluster.worker("daphne")]
    pids = [w.pid for w in workers]
    writer = cluster.writer()
    setup = await asyncio.to_thread(writer.call, op="setup", orders=NORMAL + 1)
    cookie = f"sessionid={setup['session']}"
    *orders, shared = setup["orders"]
    normal = [
        Client(f"n{i}", workers[i % 2].port, cookie, [f"order-{pk}", f"order-{shared}"])
        for i, pk in enumerate(orders)
    ]
    attackers = [Client(f"a{i}", workers[i % 2].port, cookie, []) for i in range(ATTACKERS)]
    await start_all(normal + attackers)
    try:
        writes: list[Write] = []
        for n in range(ROUNDS):
            writes += [("order", pk, f"v{n}") for pk in orders]
            writes.append(("order", shared, f"s{n}"))
        payload = frames(FRAMES)
        # The writer works at a steady pace for as long as the flood lasts.
        started = time.monotonic()
        await asyncio.gather(
            asyncio.to_thread(writer.save, writes, 0.02),
            *(attack(a, payload) for a in attackers),
        )
        await wait_until(
            lambda: all(len(a.errors) >= FRAMES for a in attackers), 120, "every error reply"
        )
        flood = time.monotonic() - started
        await wait_for_deliveries(normal, expected_by_group(writes), 60)
        await settle(writer, normal)

        delivery = check_delivery(normal, expected_by_group(writes))
        assert delivery.perfect, delivery.examples
        assert all(c.errors == [] for c in normal)
        for attacker in attackers:
            # One error per bad frame, no more, and the socket is still open.
            assert len(attacker.errors) == FRAMES, attacker.name
            assert attacker.closes == 0
            assert attacker.updates == []
        assert [w.pid for w in workers] == pids
        assert all(w.alive() for w in workers)
        for attacker in attackers[:2]:  # still usable after all that
            assert (await attacker.request("ping", [1]))["type"] == "pong"
        kinds = {str(e["error"])[:30] for a in attackers[:1] for e in a.errors}
        measured(
            f"bad input: {ATTACKERS} clients x {FRAMES} malformed frames ({len(kinds)} kinds) "
            f"answered in {flood:.1f} s ({ATTACKERS * FRAMES / flood:.0f} errors/s) by "
            "uvicorn+daphne; "
            f"{len(normal)} normal clients got all {delivery.received} updates, none lost"
        )
    finally:
        await close_all(normal + attackers)
