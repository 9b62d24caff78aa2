"""Sockets of clients without a session cookie, authenticated by a DRF token."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User

from rohrpost_signals import reauthorize
from rohrpost_signals.core import dispatch
from rohrpost_signals.core.authorization import log_refusal
from rohrpost_signals.tokens import TokenAuthMiddleware, drf_token_user, token_from_scope
from shop.models import Customer, Order
from tests.ws import CONSUMERS, reply, request

Token = pytest.importorskip("rest_framework.authtoken.models").Token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

KINDS = list(CONSUMERS)


@pytest.fixture
def order() -> Order:
    order = Order.objects.create(customer=Customer.objects.create(name="c"))
    assert dispatch.flush(timeout=30)  # its create message is out before anyone subscribes
    return order


@pytest.fixture
def token() -> Any:
    """A real DRF token of a user who may view orders."""
    user = User.objects.create_user("app")
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    return Token.objects.create(user=user)


async def open_socket(kind: str, path: str = "/ws/rohrpost/", **kwargs: Any) -> Any:
    app = TokenAuthMiddleware(CONSUMERS[kind].as_asgi())
    ws = WebsocketCommunicator(app, path, **kwargs)
    connected, subprotocol = await ws.connect(timeout=10)
    assert connected
    return ws, subprotocol


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["subprotocol", "query"])
async def test_a_real_token_authenticates_the_socket(
    kind: str, where: str, token: Any, order: Order, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    if where == "subprotocol":
        ws, subprotocol = await open_socket(kind, subprotocols=["rohrpost", f"token.{token.key}"])
        assert subprotocol == "rohrpost"  # the token is never echoed back
    else:
        ws, _ = await open_socket(kind, f"/ws/rohrpost/?token={token.key}")
    group = f"order-{order.pk}"
    answer = await request(ws, id=1, type="subscribe", data={"group": group})
    assert answer["data"]["group"] == group
    order.status = "paid"
    await database_sync_to_async(order.save)()
    assert (await reply(ws))["data"]["object"]["status"] == "paid"
    await ws.disconnect()
    assert token.key not in caplog.text


@pytest.mark.parametrize("kind", KINDS)
async def test_a_wrong_token_is_unauthenticated_and_not_logged(
    kind: str, token: Any, order: Order, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log_refusal.reset()  # refusals of earlier tests may have used up the log's budget
    wrong = "0" * 40
    ws, _ = await open_socket(kind, subprotocols=["rohrpost", f"token.{wrong}"])
    group = f"order-{order.pk}"
    answer = await request(ws, id=1, type="subscribe", data={"group": group})
    assert answer["code"] == "unauthenticated"
    assert "Refused subscribe: user=None" in caplog.text
    assert wrong not in caplog.text
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_deleted_token_ends_the_subscriptions(
    kind: str, any_layer: str, token: Any, order: Order
) -> None:
    ws, _ = await open_socket(kind, subprotocols=[f"token.{token.key}"])
    group = f"order-{order.pk}"
    await request(ws, id=1, type="subscribe", data={"group": group})
    await database_sync_to_async(token.delete)()
    reauthorize(user=token.user_id)
    await dispatch.aflush()
    ended = await reply(ws)
    assert (ended["type"], ended["data"]) == (
        "unsubscribed",
        {"group": group, "reason": "logged-out"},
    )
    await ws.disconnect()


def test_the_drf_lookup_needs_an_active_user(token: Any) -> None:
    assert drf_token_user(token.key) == token.user
    assert drf_token_user("nope") is None
    User.objects.filter(pk=token.user_id).update(is_active=False)
    assert drf_token_user(token.key) is None


def test_the_token_is_read_from_the_subprotocols_first() -> None:
    scope = {"subprotocols": ["token.abc", "rohrpost"], "query_string": b"token=xyz"}
    assert token_from_scope(scope) == ("abc", "rohrpost")
    assert token_from_scope({"query_string": b"a=1&token=xyz"}) == ("xyz", None)
    assert token_from_scope({"subprotocols": ["rohrpost"]}) == (None, "rohrpost")
