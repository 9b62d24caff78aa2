"""Delivery semantics: after commit, coalesced per transaction, never breaking save()."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from rohrpost_signals.core import changes, dispatch
from rohrpost_signals.core.failurelog import FailureLog
from rohrpost_signals.notify import notify_changes, update_and_notify
from rohrpost_signals.testing import capture_notifications
from shop.models import Customer, Order, Product
from tests import services
from tests.helpers import GroupListener

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer() -> Customer:
    return Customer.objects.create(name="Ada")


def order_messages(sent: Any, order: Order) -> list[tuple[str, Any]]:
    return [(n.type, n.object) for n in sent.for_group(f"order-{order.pk}")]


def test_outside_a_transaction_messages_go_at_once(customer: Customer) -> None:
    with capture_notifications() as sent:
        order = Order.objects.create(customer=customer)
        assert len(sent) == 2
        order.status = "paid"
        order.save()
        assert len(sent) == 4


def test_inside_a_transaction_nothing_goes_before_commit(customer: Customer) -> None:
    with capture_notifications() as sent:
        with transaction.atomic():
            order = Order.objects.create(customer=customer)
            order.status = "paid"
            order.save()
            assert sent == []
        assert order_messages(sent, order) == [
            ("create", {"id": order.pk, "status": "paid", "total": 0, "customer": customer.pk})
        ]


def test_rollback_sends_nothing(customer: Customer) -> None:
    order = Order.objects.create(customer=customer)
    with capture_notifications() as sent:
        with pytest.raises(RuntimeError, match="abort"):  # noqa: PT012, SIM117
            with transaction.atomic():
                order.status = "paid"
                order.save()
                Order.objects.create(customer=customer)
                raise RuntimeError("abort")
        with transaction.atomic():
            Product.objects.create(name="after")
    assert [n.group.split("-")[0] for n in sent] == ["product"]


def test_rolled_back_savepoint_drops_only_its_changes(customer: Customer) -> None:
    order = Order.objects.create(customer=customer)
    with capture_notifications() as sent, transaction.atomic():
        order.status = "paid"
        order.save()
        try:
            with transaction.atomic():
                order.total = 5
                order.save()
                Product.objects.create(name="rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
    assert [n.group for n in sent] == [f"order-{order.pk}", f"customer-{customer.pk}-orders"]
    # The payload is rebuilt without the rolled-back change's field.
    assert sent[0].object["updated_fields"] == ["status"]


def test_updates_in_one_transaction_merge_into_one(customer: Customer) -> None:
    order = Order.objects.create(customer=customer)
    with capture_notifications() as sent, transaction.atomic():
        order.status = "paid"
        order.save()
        order.total = 12
        order.save()
        order.status = "shipped"
        order.save()
    assert order_messages(sent, order) == [
        (
            "update",
            {
                "id": order.pk,
                "status": "shipped",
                "total": 12,
                "customer": customer.pk,
                "updated_fields": ["status", "total"],
            },
        )
    ]


def test_create_then_delete_sends_nothing(customer: Customer) -> None:
    with capture_notifications() as sent, transaction.atomic():
        order = Order.objects.create(customer=customer)
        order.status = "paid"
        order.save()
        order.delete()
    assert sent == []


def test_update_then_delete_sends_one_delete(customer: Customer) -> None:
    order = Order.objects.create(customer=customer)
    pk = order.pk
    with capture_notifications() as sent, transaction.atomic():
        order.status = "paid"
        order.save()
        order.delete()
    assert [(n.group, n.type) for n in sent] == [
        (f"order-{pk}", "delete"),
        (f"customer-{customer.pk}-orders", "delete"),
    ]


def test_each_object_gets_its_own_message(customer: Customer) -> None:
    with capture_notifications() as sent, transaction.atomic():
        first = Product.objects.create(name="a")
        second = Product.objects.create(name="b")
        first.name = "c"
        first.save()
    assert sent.groups == [f"product-{first.pk}", f"product-{second.pk}"]


def test_the_object_is_encoded_once_for_all_groups(
    customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = changes.encode_object
    monkeypatch.setattr(
        changes, "encode_object", lambda watched, value: calls.append(value) or real(watched, value)
    )
    with capture_notifications() as sent:
        Order.objects.create(customer=customer)
    assert len(sent) == 2
    assert len(calls) == 1


def test_messages_reach_the_channel_layer(any_layer: str, customer: Customer) -> None:
    listener = GroupListener(f"customer-{customer.pk}-orders")
    order = Order.objects.create(customer=customer)
    with transaction.atomic():
        order.status = "paid"
        order.save()
        order.status = "shipped"
        order.save()
    order.delete()
    received = listener.messages()
    assert [m["data"]["type"] for m in received] == ["create", "update", "delete"]
    assert received[1]["data"]["object"]["status"] == "shipped"
    assert received[1]["data"]["object"]["updated_fields"] == ["status"]
    assert all(m["data"]["group"] == f"customer-{customer.pk}-orders" for m in received)


def test_layer_outage_never_breaks_save_and_delivery_resumes(
    customer: Customer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "failed_log", FailureLog("failed"))
    dead = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [f"redis://127.0.0.1:{services.free_port()}/0"]},
    }
    failed_before = dispatch.stats.failed
    with override_settings(CHANNEL_LAYERS={"default": dead}), caplog.at_level(logging.ERROR):
        from channels.layers import channel_layers

        channel_layers.backends.clear()
        order = Order.objects.create(customer=customer)
        order.status = "paid"
        order.save()
        assert dispatch.flush(timeout=20)
        # The first failure is logged at once, the other three in the next summary.
        assert f"Could not send create of shop.Order pk={order.pk}" in caplog.text
        assert "3 messages to" not in caplog.text
        dispatch.failed_log.report()
    assert Order.objects.get(pk=order.pk).status == "paid"
    assert dispatch.stats.failed - failed_before == 4
    assert "3 messages to 2 groups failed in the last" in caplog.text
    assert f"update of shop.Order pk={order.pk} to group 'customer-{customer.pk}-orders'" in (
        caplog.text
    )
    # The layer is back: the next save is delivered.
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    listener = GroupListener(f"order-{order.pk}")
    order.status = "shipped"
    order.save()
    assert [m["data"]["object"]["status"] for m in listener.messages()] == ["shipped"]


def test_notify_changes_covers_bulk_create_and_queryset_update(customer: Customer) -> None:
    with capture_notifications() as sent:
        with transaction.atomic():
            products = Product.objects.bulk_create([Product(name="a"), Product(name="b")])
            assert sent == []
            assert notify_changes(products, "create") == 2
        assert [n.type for n in sent] == ["create", "create"]
        sent.clear()
        Order.objects.create(customer=customer)
        sent.clear()
        assert update_and_notify(Order.objects.filter(customer=customer), status="paid") == 1
    assert [(n.type, n.object["status"], n.object["updated_fields"]) for n in sent] == [
        ("update", "paid", ["status"])
    ] * 2


def test_notify_changes_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        notify_changes([], "created")


@pytest.mark.redis
def test_queued_messages_are_flushed_when_the_process_exits(tmp_path: Path) -> None:
    """A script that saves and exits at once still delivers (flush at exit)."""
    from tests.conftest import redis_layer_config

    layer_config = redis_layer_config()
    prefix = layer_config["CONFIG"]["prefix"]
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import django, os
            os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
            os.environ["RPS_SQLITE_PATH"] = {str(tmp_path / "db.sqlite3")!r}
            django.setup()
            from django.conf import settings
            from django.core.management import call_command
            call_command("migrate", verbosity=0)
            from shop.models import Product
            for n in range(50):
                Product.objects.create(name=str(n))
            """
        )
    )
    with override_settings(CHANNEL_LAYERS={"default": layer_config}):
        from channels.layers import channel_layers

        channel_layers.backends.clear()
        listener = GroupListener(*[f"product-{n}" for n in range(1, 51)])
        env = {
            **os.environ,
            "RPS_LAYER": "redis",
            "RPS_REDIS_PREFIX": prefix,
            "REDIS_URL": services.REDIS_URL,
            "RPS_DB": "sqlite",
            "PYTHONPATH": os.pathsep.join(["testproject", "."]),
        }
        subprocess.run([sys.executable, str(script)], check=True, env=env, timeout=60)
        received = listener.messages(timeout=1.0)
    assert sorted(m["data"]["group"] for m in received) == sorted(
        f"product-{n}" for n in range(1, 51)
    )
