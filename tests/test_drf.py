"""Payloads built by Django REST framework serializers (DRF is optional)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rohrpost_signals.core.watching import watched_models
from rohrpost_signals.testing import capture_notifications
from shop.models import Customer, Order, Product

serializers = pytest.importorskip("rest_framework.serializers")

pytestmark = pytest.mark.django_db(transaction=True)

# How often a serializer's data was built: once per change, not per group.
built: list[str] = []


class CustomerSerializer(serializers.ModelSerializer):  # type: ignore[misc,name-defined]
    class Meta:
        model = Customer
        fields = ["id", "name"]


class OrderSerializer(serializers.ModelSerializer):  # type: ignore[misc,name-defined]
    customer = CustomerSerializer(read_only=True)
    label = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ["id", "status", "total", "customer", "label"]

    def get_label(self, order: Order) -> str:
        built.append("order")
        return f"{order.status} #{order.pk}"


class ProductSerializer(serializers.ModelSerializer):  # type: ignore[misc,name-defined]
    class Meta:
        model = Product
        fields = ["id", "name"]


@pytest.fixture
def order_serializer(settings: Any) -> Callable[[Any], None]:
    def use(serializer: Any) -> None:
        models = dict(settings.ROHRPOST["MODELS"])
        models["shop.Order"] = {**models["shop.Order"], "serializer": serializer}
        settings.ROHRPOST = {**settings.ROHRPOST, "MODELS": models}

    built.clear()
    return use


@pytest.fixture
def customer() -> Customer:
    return Customer.objects.create(name="Ada")


def expected(order: Order, customer: Customer, **extra: Any) -> dict[str, Any]:
    return {
        "id": order.pk,
        "status": order.status,
        "total": "12.50",  # DRF's DecimalField gives a string
        "customer": {"id": customer.pk, "name": "Ada"},
        "label": f"{order.status} #{order.pk}",
        **extra,
    }


@pytest.mark.parametrize("given_as", ["class", "dotted path"])
def test_a_serializer_class_as_the_serializer_option(
    given_as: str, order_serializer: Callable[[Any], None], customer: Customer
) -> None:
    order_serializer(OrderSerializer if given_as == "class" else "tests.test_drf.OrderSerializer")
    with capture_notifications() as sent:
        order = Order.objects.create(customer=customer, total="12.50")
        order.status = "paid"
        order.save()
        order_pk = order.pk
        order.delete()
    order.pk = order_pk
    groups = [f"order-{order_pk}", f"customer-{customer.pk}-orders"]
    assert [(n.group, n.type) for n in sent] == [
        (group, kind) for kind in ("create", "update", "delete") for group in groups
    ]
    objects = [n.object for n in sent.for_group(groups[0])]
    order.status = "new"
    assert objects[0] == expected(order, customer)
    order.status = "paid"
    assert objects[1] == expected(order, customer, updated_fields=["status"])
    assert objects[2] == expected(order, customer)
    # Two groups, three changes: serialized three times.
    assert built == ["order"] * 3


def test_a_models_serializer_class_wins_over_the_option(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setattr(Product, "serializer_class", ProductSerializer, raising=False)
    models = {**settings.ROHRPOST["MODELS"], "shop.Product": {"serializer": lambda *args: {}}}
    settings.ROHRPOST = {**settings.ROHRPOST, "MODELS": models}
    try:
        with capture_notifications() as sent:
            product = Product.objects.create(name="lamp")
        assert [n.object for n in sent] == [{"id": product.pk, "name": "lamp"}]
    finally:
        monkeypatch.undo()
        watched_models.rebuild()


def test_the_model_hook_wins_over_a_serializer(
    order_serializer: Callable[[Any], None], customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def get_push_notification_data(self: Order, **kwargs: Any) -> dict[str, Any]:
        return {"hook": True}

    monkeypatch.setattr(
        Order, "get_push_notification_data", get_push_notification_data, raising=False
    )
    order_serializer(OrderSerializer)
    try:
        with capture_notifications() as sent:
            Order.objects.create(customer=customer)
        assert {n.object["hook"] for n in sent} == {True}
        assert built == []
    finally:
        monkeypatch.undo()
        watched_models.rebuild()


@pytest.fixture(autouse=True)
def _rebuilt() -> Iterator[None]:
    yield
    watched_models.rebuild()
