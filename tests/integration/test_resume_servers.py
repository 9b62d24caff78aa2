"""Resuming across two real ASGI servers that share Redis (docs/resuming.rst).

A client on one server subscribes, goes away while another process commits
changes to its group, and comes back on the other server with ``since``: it
gets exactly what it missed, in order, and then live messages with no gap
and no duplicate at the seam; beyond the history limit it is told to resync.
Writers in four processes (two commands, both servers' web views) share one
sequence per group.

The servers, writers, PostgreSQL database and Redis prefix come from
``conftest.py`` (``shared_redis_cluster``); the WebSocket client is a small
one of this module's own that keeps every frame of every connection.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from .clients import post_status
from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

MISSED = 50  # updates committed while the client is away
HISTORY_LIMIT = 20  # the small history of the resync test

_request_ids = itertools.count(1)


@dataclass
class Connection:
    """One WebSocket connection and every frame it received, in order."""

    port: int
    cookie: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    ws: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None

    async def open(self) -> Connection:
        self.ws = await connect(
            f"ws://127.0.0.1:{self.port}/ws/rohrpost/",
            origin=f"http://127.0.0.1:{self.port}",  # type: ignore[arg-type]
            additional_headers={"Cookie": self.cookie},
            max_size=None,
            max_queue=None,
            open_timeout=30,
        )
        self._reader = asyncio.create_task(self._read(self.ws))
        return self

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self.frames.append(json.loads(raw))

    async def subscribe(self, group: str, since: int | None = None) -> dict[str, Any]:
        """Send a subscribe; the reply frame."""
        assert self.ws is not None
        request_id = next(_request_ids)
        data: dict[str, Any] = {"group": group}
        if since is not None:
            data["since"] = since
        await self.ws.send(json.dumps({"id": request_id, "type": "subscribe", "data": data}))
        await self.wait_for(lambda: self.reply(request_id) is not None, f"reply {request_id}")
        reply = self.reply(request_id)
        assert reply is not None
        assert "error" not in reply, reply
        return reply

    def reply(self, request_id: int) -> dict[str, Any] | None:
        return next((f for f in self.frames if f.get("id") == request_id), None)

    def after(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        """The frames that came after ``frame``."""
        return self.frames[self.frames.index(frame) + 1 :]

    def updates(self, group: str) -> list[dict[str, Any]]:
        return [
            f
            for f in self.frames
            if f.get("type") == "subscription-update" and f["data"]["group"] == group
        ]

    async def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self._reader is not None and self._reader.done():
                self._reader.result()  # the connection ended: say why
                raise AssertionError(f"connection closed while waiting for {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["data"]["seq"] for f in frames]


def statuses(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["object"]["status"] for f in frames]


def save(writer: Any, pk: int, values: list[str]) -> None:
    writer.save([("order", pk, value) for value in values])
    assert writer.flush()["failed"] == 0


MARKER = "settle-marker"


async def settle(writer: Any, pk: int, group: str, *connections: Connection) -> None:
    """Show that nothing more is on its way, without sleeping.

    Saves a marker to order ``pk`` and waits until every connection has it in
    ``group``: a group's messages reach a socket in order, so a duplicate
    would have come first. The marker frames are then dropped from the record.
    """
    await asyncio.to_thread(save, writer, pk, [MARKER])

    def is_marker(frame: dict[str, Any]) -> bool:
        return frame.get("type") == "subscription-update" and statuses([frame]) == [MARKER]

    for connection in connections:
        await connection.wait_for(
            lambda c=connection: any(is_marker(f) for f in c.updates(group)), "the marker"
        )
        assert sum(is_marker(f) for f in connection.frames) == 1
        connection.frames = [f for f in connection.frames if not is_marker(f)]


async def test_a_client_resumes_on_the_other_server_with_exactly_what_it_missed(
    shared_redis_cluster: Cluster,
) -> None:
    cluster = shared_redis_cluster
    server_a, server_b = cluster.worker("uvicorn"), cluster.worker("daphne")
    writer = cluster.writer()
    setup = writer.call(op="setup", orders=1)
    cookie, pk = f"sessionid={setup['session']}", setup["orders"][0]
    group = f"order-{pk}"

    first = await Connection(server_a.port, cookie).open()
    start = (await first.subscribe(group))["data"]["seq"]
    await asyncio.to_thread(save, writer, pk, ["seen-0", "seen-1"])
    await first.wait_for(lambda: len(first.updates(group)) == 2, "the live updates")
    assert seqs(first.updates(group)) == [start + 1, start + 2]
    last_seen = start + 2
    await first.close()

    # Away: another process commits 50 changes to the group.
    missed = [f"away-{n}" for n in range(MISSED)]
    await asyncio.to_thread(save, writer, pk, missed)

    second = await Connection(server_b.port, cookie).open()
    try:
        reply = await second.subscribe(group, since=last_seen)
        epoch = reply["data"]["epoch"]
        assert reply["data"] == {"group": group, "seq": last_seen + MISSED, "epoch": epoch}
        # The same history as the first server's live updates: no resync.
        assert {u["data"]["epoch"] for u in first.updates(group)} == {epoch}
        await second.wait_for(lambda: len(second.updates(group)) == MISSED, "the replay")
        # The reply, then exactly the missed updates, in order, and nothing else.
        replayed = second.after(reply)
        assert statuses(replayed) == missed
        assert seqs(replayed) == list(range(last_seen + 1, last_seen + MISSED + 1))

        live = [f"live-{n}" for n in range(10)]
        await asyncio.to_thread(save, writer, pk, live)
        await second.wait_for(lambda: len(second.updates(group)) == MISSED + 10, "live updates")
        await settle(writer, pk, group, second)  # a duplicate would come before the marker
        received = second.after(reply)
        assert statuses(received) == missed + live
        assert seqs(received) == list(range(last_seen + 1, last_seen + MISSED + 11))
        ids = [f["id"] for f in received]
        assert len(set(ids)) == len(ids)
    finally:
        await second.close()
    assert "Traceback" not in cluster.logs()


async def test_no_gap_and_no_duplicate_at_the_seam_while_writes_go_on(
    shared_redis_cluster: Cluster,
) -> None:
    """The client hops between the servers while a writer commits all the time."""
    cluster = shared_redis_cluster
    servers = [cluster.worker("uvicorn"), cluster.worker("daphne")]
    writer = cluster.writer()
    setup = writer.call(op="setup", orders=1)
    cookie, pk = f"sessionid={setup['session']}", setup["orders"][0]
    group = f"order-{pk}"
    values = [f"v{n}" for n in range(600)]

    def write_steadily() -> None:
        # In small batches, so that the client hops many times while it runs.
        for start in range(0, len(values), 25):
            save(writer, pk, values[start : start + 25])
            time.sleep(0.05)

    connection = await Connection(servers[0].port, cookie).open()
    last_seen = (await connection.subscribe(group))["data"]["seq"]
    first_seq = last_seen + 1
    writing = asyncio.create_task(asyncio.to_thread(write_steadily))
    received: list[dict[str, Any]] = []
    hops = 0
    deadline = time.monotonic() + 120
    try:
        while True:
            await asyncio.sleep(0.15)
            await connection.close()
            mine = connection.updates(group)
            # Within one connection: replayed, then live, without a gap or a repeat.
            assert seqs(mine) == list(range(last_seen + 1, last_seen + 1 + len(mine))), hops
            received += mine
            last_seen += len(mine)
            if writing.done() and len(received) >= len(values):
                break
            assert time.monotonic() < deadline, f"{len(received)} of {len(values)} received"
            hops += 1
            connection = await Connection(servers[hops % 2].port, cookie).open()
            await connection.subscribe(group, since=last_seen)
    finally:
        await connection.close()
        await writing
    print(f"{hops} hops, {len(received)} updates")
    assert hops >= 5, "the writer finished before the client had hopped much"
    assert statuses(received) == values
    assert seqs(received) == list(range(first_seq, first_seq + len(values)))


async def test_beyond_the_history_limit_the_client_must_resync(
    shared_redis_cluster: Cluster,
) -> None:
    cluster = shared_redis_cluster
    small = {"RPS_HISTORY_MAX_MESSAGES": str(HISTORY_LIMIT)}
    server_a, server_b = cluster.worker("uvicorn", **small), cluster.worker("daphne", **small)
    writer = cluster.writer(**small)
    setup = writer.call(op="setup", orders=1)
    cookie, pk = f"sessionid={setup['session']}", setup["orders"][0]
    group = f"order-{pk}"

    first = await Connection(server_a.port, cookie).open()
    start = (await first.subscribe(group))["data"]["seq"]
    await first.close()

    # Exactly as many as the history keeps: still replayed.
    await asyncio.to_thread(save, writer, pk, [f"kept-{n}" for n in range(HISTORY_LIMIT)])
    second = await Connection(server_b.port, cookie).open()
    reply = await second.subscribe(group, since=start)
    await second.wait_for(lambda: len(second.updates(group)) == HISTORY_LIMIT, "the replay")
    assert seqs(second.after(reply)) == list(range(start + 1, start + HISTORY_LIMIT + 1))
    await second.close()
    last_seen = start + HISTORY_LIMIT

    # One more than it keeps: the client is told to reload, then gets live updates.
    await asyncio.to_thread(save, writer, pk, [f"lost-{n}" for n in range(HISTORY_LIMIT + 1)])
    now = last_seen + HISTORY_LIMIT + 1
    third = await Connection(server_a.port, cookie).open()
    try:
        reply = await third.subscribe(group, since=last_seen)
        epoch = reply["data"]["epoch"]
        assert reply["data"] == {"group": group, "seq": now, "epoch": epoch}
        await asyncio.to_thread(save, writer, pk, ["after-0", "after-1"])
        await third.wait_for(lambda: len(third.updates(group)) == 2, "live updates")
        await settle(writer, pk, group, third)
        [resync, *rest] = third.after(reply)
        assert resync["type"] == "resync-required"
        assert resync["data"] == {"group": group, "seq": now, "epoch": epoch}
        assert statuses(rest) == ["after-0", "after-1"]
        assert seqs(rest) == [now + 1, now + 2]
    finally:
        await third.close()


def _customer_of(database: str, order: int) -> int:
    import psycopg

    with psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=int(os.environ.get("PGPORT", "5432")),
        user=os.environ.get("PGUSER", "postgres"),
        dbname=database,
    ) as conn:
        row = conn.execute("SELECT customer_id FROM shop_order WHERE id = %s", (order,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_writers_in_four_processes_share_one_gap_free_sequence(
    shared_redis_cluster: Cluster,
) -> None:
    cluster = shared_redis_cluster
    server_a, server_b = cluster.worker("uvicorn"), cluster.worker("daphne")
    writers = [cluster.writer(), cluster.writer()]
    setup = writers[0].call(op="setup", orders=6)
    cookie, orders = f"sessionid={setup['session']}", setup["orders"]
    group = f"customer-{_customer_of(cluster.database, orders[0])}-orders"
    rounds = 60

    listeners = [await Connection(s.port, cookie).open() for s in (server_a, server_b)]
    for listener in listeners:
        await listener.subscribe(group)

    # Each order is written by one process: two commands and both servers' web views.
    def command(index: int) -> None:
        mine = orders[2 * index : 2 * index + 2]
        writers[index].save([("order", pk, f"w{index}-{n}") for n in range(rounds) for pk in mine])
        assert writers[index].flush()["failed"] == 0

    def web(port: int, pk: int, name: str) -> None:
        for n in range(rounds):
            assert post_status(port, cookie, pk, f"{name}-{n}") == 200

    await asyncio.gather(
        asyncio.to_thread(command, 0),
        asyncio.to_thread(command, 1),
        asyncio.to_thread(web, server_a.port, orders[4], "a"),
        asyncio.to_thread(web, server_b.port, orders[5], "b"),
    )
    total = 6 * rounds
    try:
        for listener in listeners:
            await listener.wait_for(
                lambda listener=listener: len(listener.updates(group)) >= total, "every update"
            )
        await settle(writers[0], orders[0], group, *listeners)
        numbered = []
        for listener in listeners:
            got = listener.updates(group)
            assert len(got) == total
            numbers = sorted(seqs(got))
            assert numbers == list(range(numbers[0], numbers[0] + total)), "a gap or a repeat"
            # Each process's own changes keep their commit order.
            for pk in orders:
                mine = [f for f in got if f["data"]["object"]["id"] == pk]
                assert seqs(mine) == sorted(seqs(mine))
            numbered.append(
                {f["data"]["seq"]: (f["id"], f["data"]["object"]["status"]) for f in got}
            )
        # Both servers forwarded the same message under the same number.
        assert numbered[0] == numbered[1]
    finally:
        for listener in listeners:
            await listener.close()
    assert "Traceback" not in cluster.logs()
