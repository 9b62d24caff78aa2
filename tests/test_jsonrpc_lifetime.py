"""JSON-RPC subscriptions stay authorized for their whole life, as rohrpost ones do.

The re-checks live in the protocol-neutral consumer bases; a JSON-RPC socket
hears about a subscription the server ended as an ``unsubscribed`` notification.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from board.models import Board, Card
from rohrpost_signals import reauthorize
from tests.jsonrpc_clients import CONSUMERS, frame
from tests.test_lifetime import (  # noqa: F401  (fixtures)
    boards,
    browser,
    card,
    people,
    save,
    silently_remove,
)

pytestmark = [pytest.mark.django_db(transaction=True)]

SOCKETS = list(CONSUMERS)


async def open_socket(kind: str, cookie: str) -> WebsocketCommunicator:
    app = AuthMiddlewareStack(CONSUMERS[kind].as_asgi())
    ws = WebsocketCommunicator(app, "/ws/jsonrpc/", headers=[(b"cookie", cookie.encode())])
    connected, _ = await ws.connect(timeout=10)
    assert connected
    return ws


async def call(ws: WebsocketCommunicator, method: str, params: Any, call_id: int = 1) -> Any:
    message = {"jsonrpc": "2.0", "method": method, "params": params, "id": call_id}
    await ws.send_to(text_data=json.dumps(message))
    return await frame(ws, timeout=30)


@pytest.mark.parametrize("kind", SOCKETS)
async def test_reauthorize_ends_a_json_rpc_subscription_with_a_notification(
    kind: str,
    any_layer: str,
    people: dict[str, User],  # noqa: F811  (the fixture imported above)
    boards: dict[str, Board],  # noqa: F811
) -> None:
    ws = await open_socket(kind, (await browser(people["bob"])).cookie)
    group = f"board-{boards['team'].pk}"
    assert (await call(ws, "subscribe", [group]))["result"]["group"] == group
    await database_sync_to_async(silently_remove)(boards["team"], people["bob"])
    reauthorize(group=group)
    assert await frame(ws, timeout=30) == {
        "jsonrpc": "2.0",
        "method": "unsubscribed",
        "params": {"group": group, "reason": "forbidden"},
    }
    refused = await call(ws, "subscribe", {"group": group}, call_id=2)
    assert refused["error"]["data"]["reason"] == "forbidden"
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_logout_ends_the_json_rpc_sockets_of_that_session(
    kind: str,
    people: dict[str, User],  # noqa: F811  (the fixture imported above)
    card: Card,  # noqa: F811
) -> None:
    laptop, phone = await browser(people["bob"]), await browser(people["bob"])
    ws = await open_socket(kind, laptop.cookie)
    watcher = await open_socket(kind, phone.cookie)
    group = f"card-{card.pk}"
    assert (await call(ws, "subscribe", {"group": group}))["result"]["group"] == group
    assert (await call(watcher, "subscribe", {"group": group}))["result"]["group"] == group
    await database_sync_to_async(laptop.client.logout)()
    assert await frame(ws, timeout=30) == {
        "jsonrpc": "2.0",
        "method": "unsubscribed",
        "params": {"group": group, "reason": "logged-out"},
    }
    await save(card, title="after logout")
    # The other session's socket still gets updates; this one does not: its
    # next frame answers its next call.
    assert (await frame(watcher, timeout=30))["method"] == "subscription-update"
    pong = await call(ws, "ping", [], call_id=3)
    assert pong == {"jsonrpc": "2.0", "result": "pong", "id": 3}
    await ws.disconnect()
    await watcher.disconnect()
