"""Logout and reauthorize() in a third process end subscriptions on two workers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .clients import Client, close_all, start_all, wait_until
from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]


def ended(client: Client) -> list[dict[str, Any]]:
    """The ``unsubscribed`` data the client got."""
    return [m["data"] for m, _ in client.others if m.get("type") == "unsubscribed"]


async def test_logout_and_reauthorize_from_another_process_reach_both_workers(
    shared_redis_cluster: Cluster,
) -> None:
    cluster = shared_redis_cluster
    workers = [cluster.worker("uvicorn"), cluster.worker("daphne")]
    writer = cluster.writer()
    first = writer.call(op="setup", orders=2)
    order, other_order = (f"order-{pk}" for pk in first["orders"])
    laptop = f"sessionid={first['session']}"
    phone = f"sessionid={writer.call(op='login', user=first['user'])['session']}"
    second = writer.call(op="setup", orders=0)
    teammate = f"sessionid={second['session']}"

    # On each worker: the laptop's and the phone's sockets (one user, two
    # sessions), and another user who is about to lose the orders.
    clients = {
        (kind, worker.name): Client(f"{kind}@{worker.name}", worker.port, cookie, [order])
        for worker in workers
        for kind, cookie in (("laptop", laptop), ("phone", phone), ("teammate", teammate))
    }
    await start_all(clients.values())
    try:
        # A web request in the writer's process logs the laptop out.
        assert (await asyncio.to_thread(writer.call, op="logout", session=first["session"]))[
            "logged_out"
        ]
        laptops = [c for (kind, _), c in clients.items() if kind == "laptop"]
        await wait_until(lambda: all(ended(c) for c in laptops), 30, "the laptop's sockets to end")
        for client in laptops:
            assert ended(client) == [{"group": order, "reason": "logged-out"}]

        # The writer takes the teammate's view permission away and says so.
        await asyncio.to_thread(
            writer.call, op="revoke", user=second["user"], codename="view_order"
        )
        teammates = [c for (kind, _), c in clients.items() if kind == "teammate"]
        await wait_until(lambda: all(ended(c) for c in teammates), 30, "the teammate's sockets")
        for client in teammates:
            assert ended(client) == [{"group": order, "reason": "forbidden"}]

        # Nobody else lost anything, and the ended sockets get nothing more.
        await asyncio.to_thread(writer.save, [("order", first["orders"][0], "after")])
        assert (await asyncio.to_thread(writer.flush))["failed"] == 0
        phones = [c for (kind, _), c in clients.items() if kind == "phone"]
        await wait_until(lambda: all(c.values(order) == ["after"] for c in phones), 30, "phones")
        for client in phones:
            assert ended(client) == []
        for client in laptops + teammates:
            assert client.values(order) == []
            reply = await client.request("subscribe", {"group": other_order})
            assert reply["code"] == ("unauthenticated" if client in laptops else "forbidden")
        assert "Traceback" not in cluster.logs()
    finally:
        await close_all(clients.values())
