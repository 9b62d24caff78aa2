"""Load: 500 sockets on two workers, 5,000 committed updates, nothing lost or doubled."""

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
    group_of,
    latencies,
    percentile,
    settle,
    start_all,
    wait_for_deliveries,
)
from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(480)]

CLIENTS = 500  # each with an order of its own
ROUNDS = 10  # updates per client's own order: 5,000 in all
SHARED_UPDATES = 40  # updates of the order every client watches: 20,000 deliveries


STEADY_RATE = 100  # updates/s in the second phase, well below what the writer sustains
STEADY_SHARED_UPDATES = 5


def plan(own: list[int], shared: int, rounds: int, shared_updates: int, tag: str) -> list[Write]:
    """Round after round over every client's order, the shared one spread among them."""
    writes: list[Write] = []
    every = len(own) * rounds // shared_updates
    for n in range(rounds):
        for i, pk in enumerate(own):
            if (n * len(own) + i) % every == 0:
                writes.append(("order", shared, f"{tag}s{len(writes)}"))
            writes.append(("order", pk, f"{tag}{n}"))
    return writes


def saved_at(writes: list[Write], saved: list[float]) -> dict[tuple[str, str], float]:
    assert len(writes) == len(saved)
    return {(group_of(w), w[2]): t for w, t in zip(writes, saved, strict=True)}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def test_500_clients_5000_updates_zero_lost_zero_duplicated(
    shared_redis_cluster: Cluster, measured: Callable[[str], None]
) -> None:
    cluster = shared_redis_cluster
    workers = [cluster.worker("uvicorn"), cluster.worker("daphne")]
    writer = cluster.writer()
    setup = writer.call(op="setup", customers=CLIENTS, orders=CLIENTS + 1)
    cookie = f"sessionid={setup['session']}"
    *own, shared = setup["orders"]
    clients = [
        Client(f"c{i}", workers[i % 2].port, cookie, [f"order-{pk}", f"order-{shared}"])
        for i, pk in enumerate(own)
    ]
    await start_all(clients)
    try:
        # 1. A steady rate, well within what one writer sustains: the latency users see.
        steady = plan(own, shared, 1, STEADY_SHARED_UPDATES, "q")
        steady_saved = await asyncio.to_thread(writer.save, steady, 1 / STEADY_RATE)
        await wait_for_deliveries(clients, expected_by_group(steady), 60)

        # 2. Saturation: the writer saves as fast as it can.
        burst = plan(own, shared, ROUNDS, SHARED_UPDATES, "r")
        assert len(burst) == CLIENTS * ROUNDS + SHARED_UPDATES
        before = (await asyncio.to_thread(writer.call, op="stats"))["stats"]
        started = time.time()
        burst_saved = await asyncio.to_thread(writer.save, burst)
        stats = await asyncio.to_thread(writer.flush)
        sent = time.time()
        writes = steady + burst
        await wait_for_deliveries(clients, expected_by_group(writes), 180)
        burst_done = max(u.received_at for c in clients for u in c.updates)
        await settle(writer, clients)  # anything extra (a duplicate) came before the marker

        expected = expected_by_group(writes)
        total = sum(len(expected[group]) for c in clients for group in c.groups)
        delivery = check_delivery(clients, expected)
        assert delivery.perfect, delivery.examples
        assert delivery.expected == delivery.received == total
        assert total == CLIENTS * (ROUNDS + 1 + SHARED_UPDATES + STEADY_SHARED_UPDATES)
        assert len(writes) >= 5000
        assert stats["failed"] == stats["dropped"] == stats["layer_dropped"] == 0, stats
        assert all(w.alive() for w in workers)
        assert all(c.closes == 0 for c in clients)

        burst_lat = latencies(clients, saved_at(burst, burst_saved))
        steady_at = saved_at(steady, steady_saved)
        steady_lat = latencies(clients, steady_at)
        burst_deliveries = CLIENTS * (ROUNDS + SHARED_UPDATES)
        assert len(burst_lat) == burst_deliveries
        assert len(steady_lat) == total - burst_deliveries
        measured(
            f"load: {CLIENTS} clients on uvicorn+daphne; burst: {len(burst)} updates "
            f"({stats['sent'] - before['sent']} group messages) "
            f"sent in {sent - started:.1f} s "
            f"({len(burst) / (sent - started):.0f} updates/s), {burst_deliveries} deliveries "
            f"done after {burst_done - started:.1f} s "
            f"({burst_deliveries / (burst_done - started):.0f}/s), save-to-receive p50 "
            f"{ms(percentile(burst_lat, 0.5))}, p99 {ms(percentile(burst_lat, 0.99))} (queueing)"
        )
        # One recipient (a client's own order) and fan-out to all 500 (the shared one).
        own_at = {key: t for key, t in steady_at.items() if key[0] != f"order-{shared}"}
        fan_at = {key: t for key, t in steady_at.items() if key[0] == f"order-{shared}"}
        own_lat, fan_lat = latencies(clients, own_at), latencies(clients, fan_at)
        assert len(own_lat) == CLIENTS
        assert len(fan_lat) == CLIENTS * STEADY_SHARED_UPDATES
        measured(
            f"load: steady {STEADY_RATE} updates/s ({len(steady)} updates) to the same "
            f"{CLIENTS} clients: save-to-receive for one subscriber p50 "
            f"{ms(percentile(own_lat, 0.5))}, p99 {ms(percentile(own_lat, 0.99))}; for "
            f"{CLIENTS} subscribers of one group p50 {ms(percentile(fan_lat, 0.5))}, p99 "
            f"{ms(percentile(fan_lat, 0.99))}; in all {total} deliveries, "
            f"lost {delivery.lost}, duplicated {delivery.duplicated}"
        )
    finally:
        await close_all(clients)
