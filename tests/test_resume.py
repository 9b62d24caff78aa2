"""Sequence numbers, bounded history and resuming with ``since``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.test import override_settings

from rohrpost_signals.core import dispatch, history
from shop.models import Product
from tests.helpers import aeventually
from tests.ws import CONSUMERS, assert_alive, connect, reply, request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

KINDS = list(CONSUMERS)


async def rename(product: Product, name: str) -> None:
    product.name = name
    await database_sync_to_async(product.save)()


async def updates_while_away(product: Product, count: int) -> None:
    for n in range(count):
        await rename(product, f"offline {n}")
    await dispatch.aflush()


async def subscribe(ws: Any, group: str, since: int | None = None, id: int = 1) -> dict[str, Any]:
    data: dict[str, Any] = {"group": group}
    if since is not None:
        data["since"] = since
    answer = await request(ws, id=id, type="subscribe", data=data)
    assert "error" not in answer, answer
    return answer


@pytest.mark.parametrize("kind", KINDS)
async def test_reconnecting_client_gets_exactly_what_it_missed(
    kind: str, any_layer: str, user: User
) -> None:
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    ws = await connect(kind, user)
    seen = (await subscribe(ws, group))["data"]["seq"]
    await rename(product, "online")
    live = await reply(ws)
    assert live["data"]["seq"] == seen + 1
    last_seen = live["data"]["seq"]
    await ws.disconnect()

    await updates_while_away(product, 50)

    ws = await connect(kind, user)
    answer = await subscribe(ws, group, since=last_seen)
    assert answer["data"] == {"group": group, "seq": last_seen + 50, "epoch": live["data"]["epoch"]}
    replayed = [await reply(ws) for _ in range(50)]
    assert [m["data"]["seq"] for m in replayed] == list(range(last_seen + 1, last_seen + 51))
    assert [m["data"]["object"]["id"] for m in replayed] == [product.pk] * 50
    # Then live, with no gap and no duplicate at the seam.
    await rename(product, "back online")
    await dispatch.aflush()
    live = await reply(ws)
    assert live["data"]["seq"] == last_seen + 51
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_replayed_frames_are_byte_identical_to_live_ones(kind: str, user: User) -> None:
    """The id stays the same, so a client can drop duplicates by id."""
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    ws = await connect(kind, user)
    since = (await subscribe(ws, group))["data"]["seq"]
    await rename(product, "x")
    await dispatch.aflush()
    live_text = await ws.receive_from(timeout=10)
    other = await connect(kind, user)
    await subscribe(other, group, since=since)
    assert await other.receive_from(timeout=10) == live_text
    await ws.disconnect()
    await other.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_beyond_the_history_limit_the_client_must_resync(
    kind: str, any_layer: str, user: User, settings: Any
) -> None:
    settings.ROHRPOST = {**settings.ROHRPOST, "HISTORY_MAX_MESSAGES": 10}
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    ws = await connect(kind, user)
    head = (await subscribe(ws, group))["data"]
    since, epoch = head["seq"], head["epoch"]
    await ws.disconnect()
    await updates_while_away(product, 11)

    ws = await connect(kind, user)
    answer = await subscribe(ws, group, since=since)
    assert answer["data"] == {"group": group, "seq": since + 11, "epoch": epoch}
    resync = await reply(ws)
    assert resync["type"] == "resync-required"
    assert resync["data"] == {"group": group, "seq": since + 11, "epoch": epoch}
    # Still subscribed: live messages keep coming.
    await rename(product, "live")
    await dispatch.aflush()
    assert (await reply(ws))["data"]["seq"] == since + 12
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_within_the_history_limit_there_is_no_resync(
    kind: str, user: User, settings: Any
) -> None:
    settings.ROHRPOST = {**settings.ROHRPOST, "HISTORY_MAX_MESSAGES": 10}
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    ws = await connect(kind, user)
    since = (await subscribe(ws, group))["data"]["seq"]
    await ws.disconnect()
    await updates_while_away(product, 10)
    ws = await connect(kind, user)
    await subscribe(ws, group, since=since)
    types = [(await reply(ws))["type"] for _ in range(10)]
    assert types == ["subscription-update"] * 10
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_messages_older_than_the_age_limit_are_gone(
    kind: str, any_layer: str, user: User, settings: Any
) -> None:
    settings.ROHRPOST = {**settings.ROHRPOST, "HISTORY_MAX_AGE": 1}
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    ws = await connect(kind, user)
    since = (await subscribe(ws, group))["data"]["seq"]
    await ws.disconnect()
    await updates_while_away(product, 2)
    store = history.store_for("default")

    async def aged_out() -> bool:
        return (await store.replay(group, since)).resync

    await aeventually(aged_out, what="the missed messages to age out")
    ws = await connect(kind, user)
    await subscribe(ws, group, since=since)
    assert (await reply(ws))["type"] == "resync-required"
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_since_from_a_lost_counter_means_resync(kind: str, user: User) -> None:
    """A seq the server never handed out (its counter was lost) cannot be resumed."""
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    ws = await connect(kind, user)
    current = (await subscribe(ws, group))["data"]["seq"]
    await subscribe(ws, group, since=current + 5, id=2)
    assert (await reply(ws))["type"] == "resync-required"
    await ws.disconnect()
    # A new socket: one that has the group gets no second replay for an older since.
    ws = await connect(kind, user)
    await subscribe(ws, group, since=3, id=3)  # an old counter that started at 1
    assert (await reply(ws))["type"] == "resync-required"
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("since", [-1, "5", 1.5, True, [1]])
async def test_bad_since_is_an_error(kind: str, since: Any, user: User) -> None:
    ws = await connect(kind, user)
    answer = await request(ws, id=4, type="subscribe", data={"group": "product-1", "since": since})
    assert answer["error"] == (
        "data.since must be a non-negative integer: the last seq the client saw."
    )
    await assert_alive(ws)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_live_copies_of_replayed_messages_are_dropped(
    kind: str, any_layer: str, user: User
) -> None:
    """The seam: a message both replayed and delivered live reaches the socket once."""
    ws = await connect(kind, user)
    head = (await subscribe(ws, "product-9"))["data"]
    seq, epoch = head["seq"], head["epoch"]
    layer = get_channel_layer()
    for n in (seq - 1, seq, seq + 1):
        text = json.dumps({"id": n, "type": "subscription-update", "data": {"seq": n}})
        await layer.group_send(
            "product-9",
            {
                "type": "rohrpost.message",
                "message": text,
                "group": "product-9",
                "seq": n,
                "epoch": epoch,
            },
        )
    assert json.loads(await ws.receive_from(timeout=10))["data"]["seq"] == seq + 1
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


async def test_history_can_be_switched_off(user: User) -> None:
    with override_settings(ROHRPOST={"HISTORY_MAX_MESSAGES": 0, "MODELS": {"shop.Product": {}}}):
        product = await database_sync_to_async(Product.objects.create)(name="lamp")
        ws = await connect("async", user)
        answer = await subscribe(ws, f"product-{product.pk}", since=5)
        assert answer["data"] == {"group": f"product-{product.pk}"}
        await rename(product, "x")
        await dispatch.aflush()
        update = await reply(ws)
        assert "seq" not in update["data"]
        await ws.disconnect()
