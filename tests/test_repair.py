"""Server-side gap repair: what the layer drops, the socket gets from the history."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from django.contrib.auth.models import User
from django.test import override_settings

from rohrpost_signals.conf import conf
from rohrpost_signals.core import dispatch, history, membership, repair
from rohrpost_signals.core.encoding import subscription_update
from rohrpost_signals.core.repair import Cursor, Step, step
from tests import services
from tests.conftest import own_redis_layer
from tests.helpers import aeventually
from tests.ws import CONSUMERS, connect, reply, request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

KINDS = list(CONSUMERS)
GROUP = "product-7"


@pytest.mark.parametrize(
    ("cursor", "seq", "epoch", "expected"),
    [
        (None, 5, "a", Step.FIRST),
        (Cursor("a", 4), 5, "a", Step.NEXT),
        (Cursor("a", 4), 4, "a", Step.DUPLICATE),
        (Cursor("a", 4), 2, "a", Step.DUPLICATE),
        (Cursor("a", 4), 7, "a", Step.GAP),
        (Cursor("a", 4), 5, "b", Step.NEW_EPOCH),
        (Cursor("a", 4), 2, "b", Step.NEW_EPOCH),  # a reused number in a new epoch is news
        (Cursor(None, 4), 5, "b", Step.NEXT),  # numbered before epochs existed
        (Cursor("a", 4), 5, None, Step.NEXT),
    ],
)
def test_step(cursor: Cursor | None, seq: int, epoch: str | None, expected: Step) -> None:
    assert step(cursor, seq, epoch) is expected


@pytest.fixture
def head_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repair, "HEAD_CHECK_INTERVAL", 0.05)


@pytest.fixture
def no_head_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only live messages may reveal gaps: the test counts history reads.
    monkeypatch.setattr(repair, "HEAD_CHECK_INTERVAL", 3600.0)


async def number(n: int, group: str = GROUP) -> tuple[int, str, str]:
    """Number and record a message in the group's history, as the sender does."""
    _text, (head, tail) = subscription_update(n, "update", group, json.dumps({"n": n}))
    return await history.store_for(conf.CHANNEL_LAYER).append(group, head, tail)


async def publish(n: int, group: str = GROUP) -> tuple[int, str]:
    """A message the layer delivers."""
    seq, epoch, text = await number(n, group)
    await send_numbered(group, seq, epoch, text)
    return seq, epoch


async def send_numbered(group: str, seq: int, epoch: str, text: str) -> None:
    event = {"type": "rohrpost.message", "message": text, "group": group, "seq": seq}
    await get_channel_layer().group_send(group, {**event, "epoch": epoch})


async def dropped(n: int, group: str = GROUP) -> int:
    """A message the layer lost: numbered and kept in the history, never delivered."""
    seq, _epoch, _text = await number(n, group)
    return seq


async def subscribed(kind: str, user: User, group: str = GROUP) -> tuple[Any, dict[str, Any]]:
    ws = await connect(kind, user)
    answer = await request(ws, id=1, type="subscribe", data={"group": group})
    assert "error" not in answer, answer
    return ws, answer["data"]


async def frames(ws: Any, count: int) -> list[dict[str, Any]]:
    return [await reply(ws) for _ in range(count)]


def numbers(received: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(m["type"], m["data"]["seq"]) for m in received]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_dropped_message_is_delivered_before_the_next_one(
    kind: str, any_layer: str, user: User, no_head_checks: None
) -> None:
    ws, head = await subscribed(kind, user)
    first = head["seq"] + 1
    await publish(1)
    await dropped(2)
    await dropped(3)
    await publish(4)
    received = await frames(ws, 4)
    assert numbers(received) == [("subscription-update", first + n) for n in range(4)]
    assert [m["data"]["object"]["n"] for m in received] == [1, 2, 3, 4]
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_drop_at_the_end_of_a_burst_is_found_by_the_head_check(
    kind: str, any_layer: str, user: User, head_checks: None
) -> None:
    ws, head = await subscribed(kind, user)
    await publish(1)
    await dropped(2)
    await dropped(3)
    # No later message reveals the gap: the worker's head check must.
    received = await frames(ws, 3)
    assert numbers(received) == [("subscription-update", head["seq"] + n) for n in (1, 2, 3)]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_gap_beyond_the_history_means_resync_then_the_live_message(
    kind: str, any_layer: str, user: User, settings: Any, no_head_checks: None
) -> None:
    settings.ROHRPOST = {**settings.ROHRPOST, "HISTORY_MAX_MESSAGES": 3}
    ws, _head = await subscribed(kind, user)
    for n in range(5):
        await dropped(n)
    seq, epoch = await publish(5)
    resync, live = await frames(ws, 2)
    assert resync["type"] == "resync-required"
    assert resync["data"] == {"group": GROUP, "seq": seq - 1, "epoch": epoch}
    assert (live["data"]["seq"], live["data"]["object"]["n"]) == (seq, 5)
    await publish(6)
    assert (await reply(ws))["data"]["seq"] == seq + 1
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_duplicates_are_dropped(
    kind: str, any_layer: str, user: User, no_head_checks: None
) -> None:
    ws, _head = await subscribed(kind, user)
    seq, epoch, text = await number(1)
    for _ in range(3):
        await send_numbered(GROUP, seq, epoch, text)
    assert (await reply(ws))["data"]["seq"] == seq
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_live_message_in_a_new_epoch_means_resync(
    kind: str, any_layer: str, user: User, no_head_checks: None
) -> None:
    ws, head = await subscribed(kind, user)
    # A restored history hands out a number the socket already had, in a new epoch.
    _text, (before, after) = subscription_update(9, "update", GROUP, '{"n":9}')
    reused = head["seq"]
    text = history.seq_text(before, reused, "restored", after)
    await send_numbered(GROUP, reused, "restored", text)
    resync, live = await frames(ws, 2)
    assert resync["type"] == "resync-required"
    assert resync["data"] == {"group": GROUP, "seq": reused - 1, "epoch": "restored"}
    assert (live["data"]["seq"], live["data"]["epoch"]) == (reused, "restored")
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


def restart_history(layer: str, group: str) -> None:
    """What a Redis restart or restore does to the numbers: another server wrote them."""
    store = history.store_for(conf.CHANNEL_LAYER)
    if isinstance(store, history.MemoryHistory):
        store.epoch = f"restarted-{uuid.uuid4().hex[:8]}"
        return
    import redis

    config = store._hosts[0]
    client = redis.Redis.from_url(config["address"])
    try:
        for key in (f"{store._prefix}:rps:head:{group}", f"{store._prefix}:rps:base"):
            client.hset(key, "r", "another-server")
    finally:
        client.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_history_that_started_over_is_never_taken_for_the_old_one(
    kind: str, any_layer: str, user: User, head_checks: None
) -> None:
    ws, _head = await subscribed(kind, user)
    old_seq, old_epoch = await publish(1)
    assert (await reply(ws))["data"]["seq"] == old_seq
    restart_history(any_layer, GROUP)
    # The next message starts a new epoch: the socket is told to resync.
    new_seq, new_epoch = await publish(2)
    assert new_epoch != old_epoch
    resync = await reply(ws)
    assert resync["type"] == "resync-required"
    assert resync["data"]["epoch"] == new_epoch
    if resync["data"]["seq"] < new_seq:
        # The live path saw the new epoch first: the message follows the resync.
        live = await reply(ws)
        assert (live["data"]["seq"], live["data"]["epoch"]) == (new_seq, new_epoch)
    else:
        # The head check saw it first: the resync's state already holds it,
        # and the live message, when it comes, is not sent again.
        assert resync["data"]["seq"] == new_seq
    assert await ws.receive_nothing(timeout=0.3)
    # A client resuming with the old epoch must resync too, even with a plausible since.
    other = await connect(kind, user)
    data = {"group": GROUP, "since": new_seq, "epoch": old_epoch}
    answer = await request(other, id=2, type="subscribe", data=data)
    assert answer["data"] == {"group": GROUP, "seq": new_seq, "epoch": new_epoch}
    assert (await reply(other))["type"] == "resync-required"
    await other.disconnect()
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_since_ahead_of_the_head_means_resync(
    kind: str, any_layer: str, user: User
) -> None:
    ws, head = await subscribed(kind, user)
    data = {"group": GROUP, "since": head["seq"] + 3, "epoch": head["epoch"]}
    answer = await request(ws, id=2, type="subscribe", data=data)
    assert answer["data"] == head
    assert (await reply(ws))["data"] == head
    await ws.disconnect()


async def test_sockets_of_a_worker_share_one_history_read_per_gap(
    any_layer: str, user: User, no_head_checks: None
) -> None:
    sockets = [(await subscribed(kind, user))[0] for kind in KINDS * 10]
    await publish(1)
    for ws in sockets:
        await reply(ws)
    reads = repair.stats.history_reads
    await dropped(2)
    await dropped(3)
    await publish(4)
    for ws in sockets:
        assert [m["data"]["object"]["n"] for m in await frames(ws, 3)] == [2, 3, 4]
    assert repair.stats.history_reads - reads == 1
    for ws in sockets:
        await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_epoch_is_an_error(kind: str, user: User) -> None:
    ws = await connect(kind, user)
    for epoch in (5, "", "x" * 65):
        data = {"group": GROUP, "since": 1, "epoch": epoch}
        answer = await request(ws, id=3, type="subscribe", data=data)
        assert answer["error"].startswith("data.epoch must be a string"), answer
    await ws.disconnect()


class IdleTimeoutLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """Ends each idle read with redis-py's timeout, as channels-redis' 5 s read does."""

    idle = 0.05
    timeouts = 0

    async def receive(self, channel: str) -> dict[str, Any]:
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return await asyncio.wait_for(super().receive(channel), self.idle)
        except asyncio.TimeoutError:
            type(self).timeouts += 1
            raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379") from None


@pytest.fixture
def idle_timeout_layer(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[IdleTimeoutLayer]]:
    monkeypatch.setattr(membership, "IDLE_READ_SECONDS", 0.02)
    backend = {"BACKEND": f"{__name__}.IdleTimeoutLayer"}
    with override_settings(CHANNEL_LAYERS={"default": backend}):
        channel_layers.backends.clear()
        yield IdleTimeoutLayer
    channel_layers.backends.clear()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_blocking_read_that_times_out_is_an_idle_period(
    kind: str,
    user: User,
    idle_timeout_layer: type[IdleTimeoutLayer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors = dispatch.stats.layer_errors
    ws, _head = await subscribed(kind, user)
    start = idle_timeout_layer.timeouts
    await aeventually(lambda: idle_timeout_layer.timeouts >= start + 5)
    seq, _epoch = await publish(1)
    assert (await reply(ws))["data"]["seq"] == seq
    assert dispatch.stats.layer_errors == errors
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await ws.disconnect()


@pytest.fixture
def lossy_redis_layer(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Redis layer under a prefix of its own, checked often; its keys removed after."""
    monkeypatch.setattr(repair, "HEAD_CHECK_INTERVAL", 0.05)
    monkeypatch.setattr(membership, "CHECK_INTERVAL", 0.02)
    with own_redis_layer(capacity=1000, group_expiry=3600) as config:
        yield config["CONFIG"]["prefix"]


#: Which keys go, as data loss without a restart removes them (Redis keeps its
#: run_id): ``FLUSHDB`` or one delete of the whole prefix; an eviction; or a
#: batched delete (``--scan | xargs -n 500 del``, as CI once did at start)
#: that takes the group's keys, then, after a message was sent, the base.
LOSSES = {
    "everything": [["*"]],
    "all but the base": [[f"rps:head:{GROUP}", f"rps:hist:{GROUP}", "group:*"]],
    "the counter": [[f"rps:head:{GROUP}"]],
    "the base": [["rps:base"]],
    "in two batches, the base last": [[f"rps:head:{GROUP}", "group:*"], ["rps:base"]],
    "in two batches, the base first": [["rps:base", "group:*"], [f"rps:head:{GROUP}"]],
}


def lose(prefix: str, patterns: list[str]) -> list[str]:
    client = redis.Redis.from_url(services.REDIS_URL)
    try:
        keys = [k for p in patterns for k in client.keys(f"{prefix}:{p}")]
        assert keys, patterns
        client.delete(*keys)
        return sorted(k.decode() for k in keys)
    finally:
        client.close()


async def until(ws: Any, seq: int, epoch: str) -> list[dict[str, Any]]:
    """Frames until the socket has ``(epoch, seq)``: a message or a resync naming it."""
    received: list[dict[str, Any]] = []
    while True:
        try:
            frame = await reply(ws)
        except asyncio.TimeoutError:
            pytest.fail(f"nothing more arrived, and nothing named {(epoch, seq)}: {received}")
        received.append(frame)
        data = frame["data"]
        if data["epoch"] == epoch and data["seq"] >= seq:
            return received


def silent_gaps(start: tuple[str, int], received: list[dict[str, Any]]) -> list[Any]:
    """Every frame after which the socket's (epoch, seq) did not follow on without a word."""
    problems: list[Any] = []
    epoch, seq = start
    for frame in received:
        data = frame["data"]
        if frame["type"] == "resync-required":
            epoch, seq = data["epoch"], data["seq"]
            continue
        if (data["epoch"], data["seq"]) != (epoch, seq + 1):
            problems.append(((epoch, seq), (data["epoch"], data["seq"]), data["object"]))
        epoch, seq = data["epoch"], data["seq"]
    return problems


@pytest.mark.redis
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loss", list(LOSSES))
async def test_keys_lost_without_a_restart_mean_resync_never_a_silent_gap(
    kind: str, loss: str, user: User, lossy_redis_layer: str
) -> None:
    """Redis keeps its run_id but loses keys: FLUSHDB, a delete, an eviction."""
    ws, head = await subscribed(kind, user)
    for n in range(5):
        await publish(n)
    received = await frames(ws, 5)
    start = (received[-1]["data"]["epoch"], received[-1]["data"]["seq"])
    assert silent_gaps((head["epoch"], head["seq"]), received) == []
    lost, sent = [], []
    for batch in LOSSES[loss]:
        lost += lose(lossy_redis_layer, batch)
        sent.append(await publish(5 + len(sent)))
    sent += [await publish(n) for n in range(5 + len(sent), 10)]
    last_seq, last_epoch = sent[-1]
    # Everything after the loss arrives in order, or behind a resync-required.
    after = await until(ws, last_seq, last_epoch)
    assert silent_gaps(start, after) == [], (lost, after)
    if last_epoch == start[0]:  # the numbers went on: nothing may be missing
        assert [m["data"]["object"]["n"] for m in after] == list(range(5, 10))
    # A client resuming from before the loss is never told it has everything.
    other = await connect(kind, user)
    data = {"group": GROUP, "since": start[1], "epoch": start[0]}
    answer = await request(other, id=2, type="subscribe", data=data)
    assert answer["data"]["seq"] == last_seq
    follow = await reply(other)
    if last_epoch == start[0]:
        assert [m["data"]["object"]["n"] for m in [follow, *await frames(other, 4)]] == list(
            range(5, 10)
        )
    else:
        assert follow["type"] == "resync-required", follow
    await other.disconnect()
    await ws.disconnect()


@pytest.mark.redis
@pytest.mark.parametrize("kind", KINDS)
async def test_a_lost_counter_is_found_by_the_head_check_without_a_message(
    kind: str, user: User, lossy_redis_layer: str
) -> None:
    """The socket may have missed the last messages: it must not wait for the next one."""
    ws, _head = await subscribed(kind, user)
    seq, epoch = await publish(1)
    assert (await reply(ws))["data"]["seq"] == seq
    lose(lossy_redis_layer, [f"rps:head:{GROUP}", f"rps:hist:{GROUP}"])
    resync = await reply(ws)
    assert resync["type"] == "resync-required"
    assert resync["data"]["epoch"] != epoch
    assert resync["data"]["seq"] > seq
    # The next message follows the point the resync named.
    assert await publish(2) == (resync["data"]["seq"] + 1, resync["data"]["epoch"])
    assert (await reply(ws))["data"]["seq"] == resync["data"]["seq"] + 1
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()
