"""SIGTERM to a worker, as every deploy, ``systemctl stop`` and rollout sends it.

The worker must exit within 5 s whether its sockets are still open or
already closed, tell open sockets why they close where the server lets the
application send a close frame, and leave no group membership behind in Redis.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from .clients import Client, Write, close_all, expected_by_group, start_all, wait_for_deliveries
from .cluster import Worker
from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

#: What the issue allows a worker between SIGTERM and its exit.
EXIT_DEADLINE = 5.0
CLIENTS = 20
UPDATES = 50

#: The layer as the Channels docs configure it, and as docs/deployment.rst does.
CONFIGS: dict[str, dict[str, str]] = {
    "defaults": {
        "RPS_REDIS_CONFIG": "defaults",
        "RPS_REDIS_CAPACITY": "",
        "RPS_REDIS_GROUP_EXPIRY": "",
        "RPS_REDIS_RETRY": "",
    },
    "documented": {},
}

#: The close code an open socket sees when its worker stops. uvicorn closes
#: every socket itself with 1012 (service restart) before the application
#: hears of it. daphne lets the application close, but its WebSocket library
#: (autobahn) refuses 1001 and 1012 from applications: 1000 is what it sends.
CLOSE_CODES = {"uvicorn": {1012}, "daphne": {1000}}


def memberships(redis_url: str, prefix: str) -> dict[str, list[str]]:
    """Every group under ``prefix`` and the channels channels-redis holds in it."""
    client = redis.Redis.from_url(redis_url)
    try:
        found = {}
        for key in client.scan_iter(match=f"{prefix}:group:*", count=1000):
            found[key.decode()] = [m.decode() for m in client.zrange(key, 0, -1)]
        return found
    finally:
        client.close()


def sigterm(worker: Worker) -> float:
    """SIGTERM ``worker``; seconds until it exited (killed after a minute)."""
    process = worker.process
    assert process is not None
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(
            f"{worker.name} ignored SIGTERM for 60 s:\n{worker.log()[-3000:]}"
        ) from None
    return time.monotonic() - started


async def clients_with_updates(
    cluster: Cluster, worker: Worker, writer: Any, cookie: str, orders: list[int], shared: int
) -> list[Client]:
    clients = [
        Client(f"{worker.name}/{pk}", worker.port, cookie, [f"order-{pk}", f"order-{shared}"])
        for pk in orders
    ]
    await start_all(clients)
    return clients


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize(("server", "processes"), [("uvicorn", 1), ("uvicorn", 2), ("daphne", 1)])
async def test_sigterm_stops_the_worker_and_leaves_no_membership(
    shared_redis_cluster: Cluster,
    server: str,
    processes: int,
    config: str,
    measured: Callable[[str], None],
) -> None:
    cluster = shared_redis_cluster
    extra = CONFIGS[config]
    # One worker keeps its sockets open through SIGTERM, the other's clients left before.
    # With uvicorn --workers 2 SIGTERM goes to the supervisor, which stops its children.
    open_worker = cluster.worker(server, processes, **extra)
    left_worker = cluster.worker(server, processes, **extra)
    writer = cluster.writer(**extra)
    setup = await asyncio.to_thread(writer.call, op="setup", orders=CLIENTS + 1)
    cookie = f"sessionid={setup['session']}"
    *orders, shared = setup["orders"]
    on_open = await clients_with_updates(cluster, open_worker, writer, cookie, orders, shared)
    on_left = await clients_with_updates(cluster, left_worker, writer, cookie, orders, shared)
    try:
        writes: list[Write] = [("order", shared, f"s{n}") for n in range(UPDATES)]
        writes += [("order", pk, "x") for pk in orders]
        await asyncio.to_thread(writer.save, writes)
        assert (await asyncio.to_thread(writer.flush))["failed"] == 0
        await wait_for_deliveries(on_open + on_left, expected_by_group(writes), 60)
        channels_before = memberships(cluster.redis_url, cluster.prefix)
        assert channels_before, "the clients' memberships are not in Redis"

        await close_all(on_left)
        left_after = await asyncio.to_thread(sigterm, left_worker)
        open_after = await asyncio.to_thread(sigterm, open_worker)
        await asyncio.gather(*(c._task for c in on_open if c._task), return_exceptions=True)
        codes = sorted({code for c in on_open for code in c.close_codes})
        measured(
            f"SIGTERM {server} x{processes}/{config}: exit after {left_after:.2f} s "
            f"(clients left), {open_after:.2f} s ({CLIENTS} sockets open, close codes {codes})"
        )
        assert left_after < EXIT_DEADLINE, left_worker.log()[-3000:]
        assert open_after < EXIT_DEADLINE, open_worker.log()[-3000:]
        assert all(len(c.close_codes) == 1 for c in on_open)
        assert set(codes) <= CLOSE_CODES[server], codes
        assert memberships(cluster.redis_url, cluster.prefix) == {}
        assert "Traceback" not in cluster.logs()
    finally:
        await close_all(on_open + on_left)
