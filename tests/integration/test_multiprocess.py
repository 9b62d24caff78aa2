"""Two ASGI servers sharing Redis, written to from a command and from a web request."""

from __future__ import annotations

import asyncio

import pytest

from .clients import (
    Client,
    Write,
    check_delivery,
    close_all,
    expected_by_group,
    post_status,
    settle,
    start_all,
    wait_until,
)
from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

COMMAND_ORDERS = 20  # written by the management command
WEB_ORDERS = 5  # written by web requests to the uvicorn worker
ROUNDS = 10
SHARED_UPDATES = 10


async def test_every_client_gets_every_message_once_in_commit_order(
    shared_redis_cluster: Cluster,
) -> None:
    cluster = shared_redis_cluster
    uvicorn = cluster.worker("uvicorn")
    daphne = cluster.worker("daphne")
    writer = cluster.writer()
    setup = writer.call(op="setup", orders=COMMAND_ORDERS + WEB_ORDERS + 1)
    cookie = f"sessionid={setup['session']}"
    *orders, shared = setup["orders"]

    # Each order is watched by one client on each worker; everyone watches the shared one.
    clients = [
        Client(f"{worker.name}/{pk}", worker.port, cookie, [f"order-{pk}", f"order-{shared}"])
        for pk in orders
        for worker in (uvicorn, daphne)
    ]
    await start_all(clients)
    try:
        # Each object is written by one process only, so its commit order is defined.
        command_writes: list[Write] = []
        for n in range(ROUNDS):
            command_writes += [("order", pk, f"c{n}") for pk in orders[:COMMAND_ORDERS]]
            if n < SHARED_UPDATES:
                command_writes.append(("order", shared, f"s{n}"))
        web_writes: list[Write] = [
            ("order", pk, f"w{n}") for n in range(ROUNDS) for pk in orders[COMMAND_ORDERS:]
        ]

        def web_requests() -> None:
            for _model, pk, value in web_writes:
                assert post_status(uvicorn.port, cookie, pk, value) == 200

        await asyncio.gather(
            asyncio.to_thread(writer.save, command_writes), asyncio.to_thread(web_requests)
        )
        assert (await asyncio.to_thread(writer.flush))["failed"] == 0

        expected = expected_by_group(command_writes + web_writes)
        total = sum(len(expected[group]) for c in clients for group in c.groups)
        await wait_until(
            lambda: sum(len(c.updates) for c in clients) >= total, 60, "every delivery"
        )
        await settle(writer, clients)  # anything extra (a duplicate) came before the marker

        delivery = check_delivery(clients, expected)
        assert delivery.perfect, delivery.examples
        assert delivery.received == total == len(clients) * (ROUNDS + SHARED_UPDATES)
        # The per-group sequence numbers agree: no gap, no repeat, on both workers.
        for client in clients:
            for group in client.groups:
                seqs = [u.seq for u in client.updates if u.group == group]
                if seqs and seqs[0] is not None:
                    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (client.name, group)
        assert "Traceback" not in cluster.logs()
    finally:
        await close_all(clients)
