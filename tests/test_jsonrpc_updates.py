"""Model updates over JSON-RPC: live, resumed with ``since``, beside rohrpost sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from rohrpost_signals.core import dispatch
from shop.models import Product
from tests import ws as rohrpost
from tests.jsonrpc_clients import connect, frame, ws_exchange

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

SOCKETS = ["async", "sync"]


async def rename(product: Product, name: str) -> None:
    product.name = name
    await database_sync_to_async(product.save)()
    await dispatch.aflush()


async def subscribe(
    ws: WebsocketCommunicator, group: str, since: int | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"group": group}
    if since is not None:
        params["since"] = since
    text = json.dumps({"jsonrpc": "2.0", "method": "subscribe", "params": params, "id": "sub"})
    await ws.send_to(text_data=text)
    reply: dict[str, Any] = await frame(ws)
    assert reply["id"] == "sub", reply
    assert "result" in reply, reply
    return reply["result"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", SOCKETS)
async def test_updates_arrive_as_notifications_until_unsubscribed(
    kind: str, any_layer: str, user: User
) -> None:
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    ws = await connect(kind, user)
    subscribed = await subscribe(ws, group)
    assert subscribed["group"] == group
    assert isinstance(subscribed["seq"], int)
    await rename(product, "desk lamp")
    update = await frame(ws)
    assert update["jsonrpc"] == "2.0"
    assert update["method"] == "subscription-update"
    assert "id" not in update
    params = update["params"]
    assert (params["type"], params["group"]) == ("update", group)
    assert params["seq"] == subscribed["seq"] + 1
    assert params["object"]["id"] == product.pk
    assert params["object"]["updated_fields"] == ["name"]
    reply = await ws_exchange(
        ws, json.dumps({"jsonrpc": "2.0", "method": "unsubscribe", "params": [group], "id": 2})
    )
    assert reply == {"jsonrpc": "2.0", "result": {"group": group}, "id": 2}
    await rename(product, "gone")
    # The next frame is the reply to this ping, not an update.
    assert (await ws_exchange(ws, '{"jsonrpc":"2.0","method":"ping","id":3}'))["result"] == "pong"
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_resuming_with_since_replays_what_was_missed(
    kind: str, any_layer: str, user: User
) -> None:
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    ws = await connect(kind, user)
    seen = (await subscribe(ws, group))["seq"]
    await ws.disconnect()
    for n in range(5):
        await rename(product, f"away {n}")

    ws = await connect(kind, user)
    resumed = await subscribe(ws, group, since=seen)
    assert (resumed["group"], resumed["seq"]) == (group, seen + 5)
    replayed = [await frame(ws) for _ in range(5)]
    assert [m["method"] for m in replayed] == ["subscription-update"] * 5
    assert [m["params"]["seq"] for m in replayed] == list(range(seen + 1, seen + 6))
    assert [m["params"]["object"]["id"] for m in replayed] == [product.pk] * 5
    await rename(product, "back")
    assert (await frame(ws))["params"]["seq"] == seen + 6
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_an_unresumable_since_is_a_resync_required_notification(
    kind: str, user: User
) -> None:
    ws = await connect(kind, user)
    head = (await subscribe(ws, "product-77"))["seq"]
    again = await subscribe(ws, "product-77", since=head + 5)
    assert (again["group"], again["seq"]) == ("product-77", head)
    resync = await frame(ws)
    assert (resync["jsonrpc"], resync["method"]) == ("2.0", "resync-required")
    assert "id" not in resync
    # The same data as the rohrpost message (an epoch too, where there is one).
    assert (resync["params"]["group"], resync["params"]["seq"]) == ("product-77", head)
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_both_protocols_in_one_group_get_the_same_update(
    kind: str, any_layer: str, user: User
) -> None:
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    json_rpc = await connect(kind, user)
    await subscribe(json_rpc, group)
    classic = await rohrpost.connect(kind, user)
    await rohrpost.request(classic, id=1, type="subscribe", data={"group": group})
    await rename(product, "shared")
    rohrpost_text = await classic.receive_from(timeout=10)
    json_rpc_text = await json_rpc.receive_from(timeout=10)
    # The JSON-RPC params are the rohrpost data, character for character: the
    # change was encoded once and cut into each protocol's envelope.
    data = rohrpost_text[rohrpost_text.index(',"data":') + len(',"data":') : -1]
    assert json_rpc_text == f'{{"jsonrpc":"2.0","method":"subscription-update","params":{data}}}'
    assert json.loads(data)["object"] == {"id": product.pk, "updated_fields": ["name"]}
    await classic.disconnect()
    await json_rpc.disconnect()
