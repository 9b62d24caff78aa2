"""The rohrpost protocol end to end through both consumers."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.test import override_settings

from rohrpost_signals.core import dispatch
from rohrpost_signals.message import send_to_group
from rohrpost_signals.registry import HANDLERS, rohrpost_handler
from shop.models import Customer, Order
from tests.ws import CONSUMERS, assert_alive, connect, reply, request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

KINDS = list(CONSUMERS)


@pytest.fixture
async def customer() -> Customer:
    return await database_sync_to_async(Customer.objects.create)(name="Ada")


async def save_order(order: Order, **values: Any) -> None:
    for name, value in values.items():
        setattr(order, name, value)
    await database_sync_to_async(order.save)()
    await dispatch.aflush()


@pytest.mark.parametrize("kind", KINDS)
async def test_ping_answers_pong_with_the_data(kind: str) -> None:
    ws = await connect(kind)
    assert await request(ws, id=1, type="ping", data=[1, 2]) == {
        "id": 1,
        "type": "pong",
        "data": [1, 2],
    }
    # rohrpost.js pings with a timestamp id and no data.
    assert await request(ws, id=1764000000000, type="ping") == {
        "id": 1764000000000,
        "type": "pong",
    }
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_subscribed_socket_gets_saves_until_it_unsubscribes(
    kind: str, any_layer: str, user: User, customer: Customer
) -> None:
    order = await database_sync_to_async(Order.objects.create)(customer=customer)
    group = f"order-{order.pk}"
    ws = await connect(kind, user)
    subscribed = await request(ws, id=2, type="subscribe", data={"group": group})
    assert subscribed == {
        "id": 2,
        "type": "subscribe",
        "data": {
            "group": group,
            "seq": subscribed["data"]["seq"],
            "epoch": subscribed["data"]["epoch"],
        },
    }
    await save_order(order, status="paid")
    update = await reply(ws)
    assert update["type"] == "subscription-update"
    assert update["data"] == {
        "type": "update",
        "group": group,
        "seq": subscribed["data"]["seq"] + 1,
        "epoch": subscribed["data"]["epoch"],
        "object": {
            "id": order.pk,
            "status": "paid",
            "total": 0,
            "customer": customer.pk,
            "updated_fields": ["status"],
        },
    }
    assert await request(ws, id=3, type="unsubscribe", data={"group": group}) == {
        "id": 3,
        "type": "unsubscribe",
        "data": {"group": group},
    }
    await save_order(order, status="shipped")
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_rohrpost_js_subscription_forms(kind: str, user: User) -> None:
    ws = await connect(kind, user)
    # rohrpost.js sends its argument as data, plus auth_jwt.
    reply_a = await request(ws, id=1, type="subscribe", auth_jwt="t", data="product-7")
    assert reply_a["data"]["group"] == "product-7"
    reply_b = await request(ws, id=2, type="subscribe", data={"type": "order", "id": 5})
    assert reply_b["data"]["group"] == "order-5"
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_anonymous_users_are_refused_and_get_nothing(kind: str, customer: Customer) -> None:
    order = await database_sync_to_async(Order.objects.create)(customer=customer)
    ws = await connect(kind)
    group = f"order-{order.pk}"
    assert await request(ws, id=5, type="subscribe", data={"group": group}) == {
        "id": 5,
        "type": "subscribe",
        "error": f"Permission denied for group '{group}'.",
        "code": "unauthenticated",
    }
    await save_order(order, status="paid")
    send_to_group(group, "custom", data={"x": 1})
    await dispatch.aflush()
    assert await ws.receive_nothing(timeout=0.3)
    await assert_alive(ws)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "group", ["secret-admin", "order-x", "order-5-extra", "customer-5-order", "customer--orders"]
)
async def test_groups_no_model_produces_are_refused(kind: str, group: str, user: User) -> None:
    ws = await connect(kind, user)
    answer = await request(ws, id=6, type="subscribe", data={"group": group})
    assert answer["error"] == f"Permission denied for group '{group}'."
    assert answer["code"] == "unknown-group"
    send_to_group(group, "custom", data={"x": 1})
    await dispatch.aflush()
    assert await ws.receive_nothing(timeout=0.2)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_producible_groups_are_matched_exactly(kind: str, user: User) -> None:
    ws = await connect(kind, user)
    for n, group in enumerate(["order-5", "customer-12-orders", "product-3", "announcements"]):
        answer = await request(ws, id=n, type="subscribe", data={"group": group})
        assert answer.get("error") is None, group
    # Groups from a get_group_name() hook cannot be predicted: the default
    # policy refuses them and a project policy has to allow them.
    answer = await request(ws, id=9, type="subscribe", data={"group": "articles-news"})
    assert answer["error"] == "Permission denied for group 'articles-news'."
    await ws.disconnect()


BAD_FRAMES: list[tuple[str, dict[str, Any]]] = [
    ("{not json", {"id": None, "type": "error"}),
    ("[1, 2]", {"id": None, "error": "A message must be a JSON object."}),
    ('"text"', {"id": None, "error": "A message must be a JSON object."}),
    ('{"type": "ping"}', {"id": None, "type": "ping", "error": "Missing required field 'id'."}),
    ('{"id": 7}', {"id": 7, "error": "Missing required field 'type'."}),
    ('{"id": 8, "type": 3}', {"id": 8, "error": "Field 'type' must be a non-empty string."}),
    (
        '{"id": 9, "type": "x"}',
        {"id": 9, "type": "x", "error": "No registered handler called 'x'."},
    ),
    ('{"id": [1], "type": "ping"}', {"error": "Field 'id' must be a string or a number."}),
    (
        '{"id": 10, "type": "subscribe", "data": {"group": "has space"}}',
        {"id": 10, "type": "subscribe"},
    ),
    ('{"id": 11, "type": "subscribe"}', {"id": 11, "type": "subscribe"}),
    ('{"id": 12, "type": "unsubscribe", "data": 5}', {"id": 12, "type": "unsubscribe"}),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("frame", "expected"), BAD_FRAMES)
async def test_bad_frames_get_an_error_and_the_socket_stays_usable(
    kind: str, frame: str, expected: dict[str, Any], user: User
) -> None:
    ws = await connect(kind, user)
    await ws.send_to(text_data=frame)
    answer = await reply(ws)
    assert answer.get("error"), answer
    for key, value in expected.items():
        assert answer[key] == value
    await assert_alive(ws)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_binary_frames_get_an_error(kind: str) -> None:
    ws = await connect(kind)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await reply(ws))["error"] == "Binary frames are not supported; send JSON text."
    await assert_alive(ws)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_frames_over_the_size_limit_get_an_error(kind: str) -> None:
    with override_settings(ROHRPOST={"MAX_MESSAGE_BYTES": 100}):
        ws = await connect(kind)
        big = json.dumps({"id": 1, "type": "ping", "data": "é" * 60})  # 120 bytes of é
        await ws.send_to(text_data=big)
        answer = await reply(ws)
        assert answer["error"] == "Message is larger than the limit of 100 bytes."
        await assert_alive(ws)
        await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_subscriptions_per_socket_are_limited(kind: str, user: User) -> None:
    with override_settings(ROHRPOST={"MAX_SUBSCRIPTIONS": 2, "MODELS": {"shop.Product": {}}}):
        ws = await connect(kind, user)
        for n in (1, 2):
            assert "error" not in await request(ws, id=n, type="subscribe", data=f"product-{n}")
        # Subscribing again to a group already joined is not a new subscription.
        assert "error" not in await request(ws, id=3, type="subscribe", data="product-2")
        answer = await request(ws, id=4, type="subscribe", data="product-3")
        assert answer["error"] == "Too many subscriptions on this connection (the limit is 2)."
        await assert_alive(ws)
        await ws.disconnect()


@pytest.fixture
def custom_handlers() -> Any:
    before = dict(HANDLERS)
    yield
    HANDLERS.clear()
    HANDLERS.update(before)


@pytest.mark.parametrize("kind", KINDS)
async def test_user_handlers_sync_and_async(kind: str, custom_handlers: None) -> None:
    from rohrpost_signals.message import asend_message, send_message

    @rohrpost_handler(["echo", "echo2"])
    def echo(consumer: Any, request: dict[str, Any]) -> None:
        # Extra request keys (auth_jwt) reach the handler.
        send_message(consumer, "echo", request["id"], data=[request["data"], request["auth_jwt"]])

    @rohrpost_handler("aecho")
    async def aecho(consumer: Any, request: dict[str, Any]) -> None:
        await asend_message(consumer, "aecho", request["id"], data=request["data"])

    ws = await connect(kind)
    assert await request(ws, id=1, type="echo", data="a", auth_jwt="t") == {
        "id": 1,
        "type": "echo",
        "data": ["a", "t"],
    }
    assert (await request(ws, id=2, type="echo2", data="b", auth_jwt=None))["data"] == ["b", None]
    assert await request(ws, id=3, type="aecho", data="c") == {
        "id": 3,
        "type": "aecho",
        "data": "c",
    }
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_raising_handler_gives_a_generic_error_and_logs(
    kind: str, custom_handlers: None, caplog: pytest.LogCaptureFixture
) -> None:
    @rohrpost_handler("explode")
    def explode(consumer: Any, request: dict[str, Any]) -> None:
        raise ValueError("database password is hunter2")

    ws = await connect(kind)
    with caplog.at_level(logging.ERROR, logger="rohrpost_signals"):
        answer = await request(ws, id=4, type="explode")
    assert answer == {
        "id": 4,
        "type": "explode",
        "error": "Internal error while handling 'explode'.",
        "code": "internal-error",
    }
    assert "hunter2" in caplog.text  # the traceback goes to the log ...
    assert "Traceback" in caplog.text
    await assert_alive(ws)  # ... and the socket lives on
    await ws.disconnect()


def test_registering_a_name_twice_is_an_error(custom_handlers: None) -> None:
    from rohrpost_signals.registry import HandlerAlreadyRegistered

    with pytest.raises(HandlerAlreadyRegistered, match='Handler for "ping" is already defined'):

        @rohrpost_handler("ping")
        def my_ping(consumer: Any, request: dict[str, Any]) -> None:
            pass


def test_frames_of_ours_get_a_random_id_when_none_is_given() -> None:
    from rohrpost_signals.message import build_text

    ids = {json.loads(build_text("x"))["id"] for _ in range(50)}
    assert len(ids) == 50
    assert all(isinstance(i, int) and 0 < i < 2**53 for i in ids)
    assert json.loads(build_text("x", 5, error="bad", data={"a": 1})) == {
        "id": 5,
        "type": "x",
        "data": {"a": 1},
        "error": "bad",
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_group_text_is_forwarded_unchanged(kind: str, user: User) -> None:
    """The consumer sends the layer's text as is: no decode and re-encode per socket."""
    ws = await connect(kind, user)
    await request(ws, id=1, type="subscribe", data="product-1")
    await get_channel_layer().group_send(
        "product-1", {"type": "rohrpost.message", "message": "not even JSON"}
    )
    assert await ws.receive_from(timeout=3) == "not even JSON"
    await ws.disconnect()


async def group_size(layer: Any, group: str) -> int:
    """Members of ``group`` in the in-memory or channels-redis layer."""
    if hasattr(layer, "groups"):
        return len(layer.groups.get(group, {}))
    connection = layer.connection(layer.consistent_hash(group))
    return int(await connection.zcard(layer._group_key(group)))


@pytest.mark.parametrize("kind", KINDS)
async def test_disconnect_leaves_every_group(kind: str, user: User) -> None:
    layer = get_channel_layer()
    # Fresh names: a shared Redis may hold members of earlier runs' groups.
    first, second = (f"product-{random.randrange(10**12)}" for _ in range(2))
    ws = await connect(kind, user)
    await request(ws, id=1, type="subscribe", data=first)
    await request(ws, id=2, type="subscribe", data=second)
    assert await group_size(layer, first) == 1
    assert await group_size(layer, second) == 1
    await ws.disconnect()
    assert await group_size(layer, first) == 0
    assert await group_size(layer, second) == 0


async def test_object_level_policy_is_used(user: User, customer: Customer) -> None:
    with override_settings(ROHRPOST={"SUBSCRIBE_POLICY": "tests.policies.only_order_customer"}):
        ws = await connect("async", user)
        mine = await database_sync_to_async(Customer.objects.create)(name="ada", email="ada")
        my_order = await database_sync_to_async(Order.objects.create)(customer=mine)
        other = await database_sync_to_async(Order.objects.create)(customer=customer)
        ok = await request(ws, id=1, type="subscribe", data=f"order-{my_order.pk}")
        assert ok["data"]["group"] == f"order-{my_order.pk}"
        denied = await request(ws, id=2, type="subscribe", data=f"order-{other.pk}")
        assert denied["error"] == f"Permission denied for group 'order-{other.pk}'."
        await ws.disconnect()
