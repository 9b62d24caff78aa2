"""A consumer subclass whose group handler uses the ORM survives a database restart.

Channels closes stale database connections before each handler; the
built-in forwarding of group messages skips that hop (it uses no database),
but a subclass's own ``rohrpost_message`` must keep it. This runs a real
server: Channels' test communicator turns the clean-up off.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import psycopg
import pytest
from channels_redis.core import RedisChannelLayer
from websockets.asyncio.client import connect

from rohrpost_signals.consumers import RohrpostConsumer
from shop.consumers import OrderCountConsumer, SyncOrderCountConsumer

from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(120)]


def terminate_connections(database: str) -> int:
    """What a database restart does to every connection of ``database``."""
    with psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=int(os.environ.get("PGPORT", "5432")),
        user=os.environ.get("PGUSER", "postgres"),
        dbname="postgres",
        autocommit=True,
    ) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize(
    ("path", "keeps_a_connection"),
    # The async ORM keeps its connection between messages; Channels closes the
    # sync consumer's after each one (CONN_MAX_AGE 0), so it holds none to kill.
    [("order-count", True), ("order-count-sync", False)],
)
async def test_an_orm_group_handler_works_across_a_database_restart(
    shared_redis_cluster: Cluster, path: str, keeps_a_connection: bool
) -> None:
    cluster = shared_redis_cluster
    worker = cluster.worker("uvicorn")
    writer = cluster.writer()
    setup = writer.call(op="setup", orders=1)
    writer.stop()
    group = f"order-{setup['orders'][0]}"
    layer = RedisChannelLayer(hosts=[cluster.redis_url], prefix=cluster.prefix)
    event: dict[str, Any] = {"type": "rohrpost.message", "message": "{}"}
    async with connect(
        f"ws://127.0.0.1:{worker.port}/ws/{path}/",
        origin=f"http://127.0.0.1:{worker.port}",  # type: ignore[arg-type]
        additional_headers={"Cookie": f"sessionid={setup['session']}"},
        open_timeout=30,
    ) as ws:
        await ws.send(json.dumps({"id": 1, "type": "subscribe", "data": {"group": group}}))
        assert "error" not in json.loads(await asyncio.wait_for(ws.recv(), 30))

        await layer.group_send(group, event)
        before = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert before["type"] == "order-count"
        assert before["count"] >= 1

        terminated = await asyncio.to_thread(terminate_connections, cluster.database)
        if keeps_a_connection:
            assert terminated >= 1
        await layer.group_send(group, event)
        assert json.loads(await asyncio.wait_for(ws.recv(), 30)) == before
    await layer.flush()
    assert "Traceback" not in worker.log()


def test_only_the_built_in_forwarding_skips_the_clean_up() -> None:
    assert RohrpostConsumer._forwards_only()
    assert not OrderCountConsumer._forwards_only()
    assert not hasattr(SyncOrderCountConsumer, "_forwards_only")  # Channels' own dispatch
