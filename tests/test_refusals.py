"""Each subscribe refusal has its own code, on both consumers, and is logged."""

from __future__ import annotations

import logging

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User
from django.test import override_settings

from rohrpost_signals.core import dispatch
from rohrpost_signals.core.authorization import log_refusal
from shop.models import Customer, Order
from tests.ws import CONSUMERS, connect, request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]


def make_people() -> tuple[User, User, Order]:
    order = Order.objects.create(customer=Customer.objects.create(name="c"))
    viewer = User.objects.create_user("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    assert dispatch.flush(timeout=30)  # the order's create message is out already
    return User.objects.get(pk=viewer.pk), User.objects.create_user("nobody"), order


@pytest.mark.parametrize("kind", list(CONSUMERS))
async def test_every_refusal_code(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    viewer, nobody, order = await database_sync_to_async(make_people)()
    group = f"order-{order.pk}"
    log_refusal.reset()
    caplog.set_level(logging.INFO, "rohrpost_signals.authorization")
    cases = [
        (None, group, "unauthenticated"),
        (nobody, group, "forbidden"),
        (viewer, f"order-{order.pk + 1000}", "forbidden"),  # no such order
        (viewer, "made-up-group", "unknown-group"),
        (viewer, "rohrpost-signals.all", "forbidden"),  # the library's own group
    ]
    for user, name, code in cases:
        ws = await connect(kind, user)
        answer = await request(ws, id=1, type="subscribe", data={"group": name})
        assert answer == {
            "id": 1,
            "type": "subscribe",
            "error": f"Permission denied for group '{name}'.",
            "code": code,
        }
        user_id = user.pk if user is not None else None
        assert f"Refused subscribe: user={user_id} group='{name}' reason={code}" in caplog.text
        await ws.disconnect()
    with override_settings(ROHRPOST={"MAX_SUBSCRIPTIONS": 1, "MODELS": {"shop.Order": {}}}):
        ws = await connect(kind, viewer)
        assert "error" not in await request(ws, id=1, type="subscribe", data=group)
        answer = await request(ws, id=2, type="subscribe", data="order-999999")
        assert answer["code"] == "too-many-subscriptions"
        assert "reason=too-many-subscriptions" in caplog.text
        await ws.disconnect()
