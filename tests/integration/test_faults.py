"""Faults with a known outcome: Redis down, a worker killed, a rollback, a stalled client."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest

from .clients import (
    Client,
    SilentClient,
    Write,
    check_delivery,
    close_all,
    expected_by_group,
    percentile,
    post_status,
    settle,
    start_all,
    wait_for_deliveries,
    wait_until,
)
from .cluster import RedisServer, Worker, Writer
from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

ORDERS = 6


def rounds(orders: list[int], shared: int, tag: str, count: int = 3) -> list[Write]:
    """``count`` updates of every order, and as many of the shared one."""
    writes: list[Write] = []
    for n in range(count):
        writes += [("order", pk, f"{tag}{n}") for pk in orders]
        writes.append(("order", shared, f"{tag}s{n}"))
    return writes


@dataclass
class Setup:
    """Two workers; on each, one client per order, all also watching a shared order."""

    workers: list[Worker]
    writer: Writer
    clients: list[Client]
    orders: list[int]
    shared: int


async def two_workers_and_clients(
    cluster: Cluster, second: str = "daphne", reconnect: bool = False
) -> Setup:
    workers = [cluster.worker("uvicorn"), cluster.worker(second)]
    writer = cluster.writer()
    setup = await asyncio.to_thread(writer.call, op="setup", orders=ORDERS + 1)
    cookie = f"sessionid={setup['session']}"
    *orders, shared = setup["orders"]
    clients = [
        Client(
            f"{worker.name}/{pk}",
            worker.port,
            cookie,
            [f"order-{pk}", f"order-{shared}"],
            reconnect=reconnect,
        )
        for worker in workers
        for pk in orders
    ]
    await start_all(clients)
    return Setup(workers, writer, clients, orders, shared)


def phase_values(writes: list[Write]) -> set[str]:
    return {value for _model, _pk, value in writes}


def received_in(phase: list[Write]) -> Callable[[Client, str], list[str]]:
    """A client's values for a group, restricted to one phase's writes."""
    values = phase_values(phase)
    return lambda client, group: [v for v in client.values(group) if v in values]


def log_has(source: Worker | Writer, pattern: str) -> bool:
    return re.search(pattern, source.log()) is not None


async def test_redis_outage_loses_only_what_was_saved_while_it_was_down(
    private_cluster: Cluster, private_redis: RedisServer, measured: Callable[[str], None]
) -> None:
    setup = await two_workers_and_clients(private_cluster)
    workers, writer, clients = setup.workers, setup.writer, setup.clients
    orders, shared = setup.orders, setup.shared
    try:
        before = rounds(orders, shared, "b")
        await asyncio.to_thread(writer.save, before)
        assert (await asyncio.to_thread(writer.flush))["failed"] == 0
        await wait_for_deliveries(clients, expected_by_group(before), 30)

        # Redis goes away (and will come back empty: no persistence).
        private_redis.stop()
        down = rounds(orders, shared, "d")
        saved = await asyncio.to_thread(writer.save, down)
        assert len(saved) == len(down), "a save failed while Redis was down"
        stats = await asyncio.to_thread(writer.flush)
        # Every message of every save in the outage failed, each logged: one per
        # group, and an order goes to two (order-<pk> and customer-<id>-orders).
        assert stats["failed"] == 2 * len(down), stats
        assert log_has(writer, r"Could not send update of shop\.Order pk=\d+ to group 'order-\d+'")
        for worker in workers:
            await wait_until(
                partial(log_has, worker, "Channel layer receive failed"),
                30,
                f"{worker.name} to log the outage",
            )
        assert all(c.closes == 0 for c in clients), "a socket closed during the outage"

        private_redis.start()
        back_at = time.time()
        # Saves right after Redis is back, 10 a second, while workers rejoin.
        recovering = [("order", shared, f"g{n}") for n in range(30)]
        recovering_saved = await asyncio.to_thread(writer.save, recovering, 0.1)
        for worker in workers:
            await wait_until(
                partial(log_has, worker, r"Rejoined \d+ group memberships"),
                30,
                f"{worker.name} to rejoin its groups",
            )
        after = rounds(orders, shared, "a")
        await asyncio.to_thread(writer.save, after)
        stats = await asyncio.to_thread(writer.flush)
        assert stats["failed"] == 2 * len(down), "a send failed after Redis was back"
        await wait_for_deliveries(clients, expected_by_group(after), 30)
        await settle(writer, clients)

        # Exactly the saves made while Redis was down are lost ...
        for phase in (before, after):
            delivery = check_delivery(clients, expected_by_group(phase), received_in(phase))
            assert delivery.perfect, delivery.examples
        lost = phase_values(down)
        assert [u for c in clients for u in c.updates if u.value in lost] == []
        # ... and of those saved while the workers were rejoining, only the first
        # ones: once a socket gets one again, it gets every later one.
        want = [value for _m, _pk, value in recovering]
        gaps = []
        for client in clients:
            got = received_in(recovering)(client, f"order-{shared}")
            assert got == want[len(want) - len(got) :], (client.name, got)
            assert got, f"{client.name} got nothing in the 3 s after Redis came back"
            first = want.index(got[0])
            gaps.append(recovering_saved[first] - back_at)
        assert all(c.closes == 0 for c in clients)
        measured(
            f"redis outage: {len(down)} saves while down, all saved, {2 * len(down)} sends "
            f"failed and logged; after restart delivery resumed within {max(gaps):.2f} s "
            f"(p50 {percentile(sorted(gaps), 0.5):.2f} s over {len(clients)} sockets)"
        )
    finally:
        await close_all(clients)


async def test_worker_killed_with_sigkill(
    private_cluster: Cluster, measured: Callable[[str], None]
) -> None:
    setup = await two_workers_and_clients(private_cluster, second="uvicorn", reconnect=True)
    writer, clients = setup.writer, setup.clients
    orders, shared = setup.orders, setup.shared
    victim, survivor = setup.workers
    on_victim = [c for c in clients if c.port == victim.port]
    on_survivor = [c for c in clients if c.port == survivor.port]
    try:
        first = rounds(orders, shared, "f")
        await asyncio.to_thread(writer.save, first)
        await wait_for_deliveries(clients, expected_by_group(first), 30)

        victim.kill()
        await wait_until(lambda: all(c.closes == 1 for c in on_victim), 30, "sockets to drop")
        # The other worker's clients keep receiving while the victim is down.
        down = rounds(orders, shared, "k")
        await asyncio.to_thread(writer.save, down)
        await wait_for_deliveries(on_survivor, expected_by_group(first + down), 30)

        restarted_at = time.monotonic()
        victim.start()  # same port: the clients' retries find it
        await wait_until(lambda: all(c.is_ready for c in on_victim), 60, "reconnects")
        reconnected = time.monotonic() - restarted_at
        later = rounds(orders, shared, "l")
        await asyncio.to_thread(writer.save, later)
        stats = await asyncio.to_thread(writer.flush)
        await wait_for_deliveries(on_survivor, expected_by_group(first + down + later), 30)
        await wait_for_deliveries(on_victim, expected_by_group(first + later), 30)
        await settle(writer, clients)

        assert stats["failed"] == 0, stats
        delivery = check_delivery(on_survivor, expected_by_group(first + down + later))
        assert delivery.perfect, delivery.examples
        # The victim's clients missed what was sent while they had no socket (a
        # resuming client would ask for it with ``since``), and got everything after.
        delivery = check_delivery(on_victim, expected_by_group(first + later))
        assert delivery.perfect, delivery.examples
        assert all(c.closes == 0 for c in on_survivor)
        assert all(c.connects == 2 for c in on_victim)
        assert survivor.alive()
        assert "Traceback" not in survivor.log()
        measured(
            f"sigkill: {len(on_survivor)} sockets on the other worker lost nothing; "
            f"{len(on_victim)} sockets reconnected {reconnected:.1f} s after the restart began"
        )
    finally:
        await close_all(clients)


async def test_rollback_inside_a_request_sends_nothing(private_cluster: Cluster) -> None:
    worker = private_cluster.worker("uvicorn")
    writer = private_cluster.writer()
    setup = await asyncio.to_thread(writer.call, op="setup", orders=1)
    cookie = f"sessionid={setup['session']}"
    [pk] = setup["orders"]
    client = Client("watcher", worker.port, cookie, [f"order-{pk}"])
    await start_all([client])
    try:
        assert await asyncio.to_thread(post_status, worker.port, cookie, pk, "undone", True) == 409
        assert await asyncio.to_thread(post_status, worker.port, cookie, pk, "kept") == 200
        await wait_until(lambda: len(client.updates) >= 1, 30, "the committed update")
        await settle(writer, [client])
        # One worker sends in commit order: had the rolled back save sent anything,
        # it would have arrived before "kept" (or at least before the marker).
        assert client.values(f"order-{pk}") == ["kept"]
    finally:
        await close_all([client])


STALL_FRAMES = 200
STALL_FRAME_BYTES = 32_000  # 6.4 MB to every subscriber: far more than socket buffers hold
STALL_BOUND = 5.0  # seconds: no reading client may wait longer for a frame


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
async def test_a_client_that_never_reads_does_not_hold_up_the_others(
    private_cluster: Cluster, server: str, measured: Callable[[str], None]
) -> None:
    worker = private_cluster.worker(server)
    writer = private_cluster.writer()
    setup = await asyncio.to_thread(writer.call, op="setup", orders=1)
    cookie = f"sessionid={setup['session']}"
    group = f"order-{setup['orders'][0]}"
    silent = await asyncio.to_thread(SilentClient, worker.port, cookie, [group])
    readers = [Client(f"reader{i}", worker.port, cookie, [group]) for i in range(5)]
    await start_all(readers)
    rss_before = worker.rss_kib()
    try:
        await asyncio.to_thread(
            writer.call, op="broadcast", group=group, count=STALL_FRAMES, size=STALL_FRAME_BYTES
        )
        await asyncio.to_thread(writer.flush)
        await wait_until(
            lambda: all(len(r.others) >= STALL_FRAMES for r in readers), 60, "every frame"
        )
        delays = sorted(at - frame["data"]["t"] for r in readers for frame, at in r.others)
        for reader in readers:
            assert [frame["data"]["n"] for frame, _at in reader.others] == list(
                range(STALL_FRAMES)
            ), reader.name
        assert delays[-1] < STALL_BOUND, f"a reading client waited {delays[-1]:.2f} s"
        # The stalled socket really is backed up (kernel buffers full of unread frames).
        backlog = silent.backlog(worker.port)
        assert backlog > 500_000, backlog
        # The server is healthy: alive, and a new socket is served at once.
        assert worker.alive()
        probe = Client("probe", worker.port, cookie, [group])
        await start_all([probe])
        assert (await probe.request("ping", ["still there"]))["data"] == ["still there"]
        await close_all([probe])
        grown = (worker.rss_kib() - rss_before) / 1024
        measured(
            f"stalled client on {server}: {len(readers)} readers got all {STALL_FRAMES} "
            f"frames of {STALL_FRAME_BYTES // 1000} kB, delay p50 "
            f"{percentile(delays, 0.5) * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms "
            f"(bound {STALL_BOUND:.0f} s); {backlog / 1e6:.1f} MB stuck in kernel buffers for "
            f"the stalled socket; worker RSS grew {grown:.0f} MiB"
        )
    finally:
        silent.close()
        await close_all(readers)
