"""Group and payload rules, field tracking and mixins (captured, not sent)."""

from __future__ import annotations

import decimal
import logging
from typing import Any

import pytest
from django.test import override_settings

from rohrpost_signals.core.watching import watched_models
from rohrpost_signals.testing import capture_notifications
from shop.models import Announcement, Article, Customer, Order, Product, Ticket

pytestmark = pytest.mark.django_db(transaction=True)

ORDER = {
    "fields": ["status", "total", "customer"],
    "exclude": ["secret"],
    "groups": ["order-{pk}", "customer-{customer_id}-orders"],
}


def watching(**models: dict[str, Any]) -> Any:
    labels = {f"shop.{name}": options for name, options in models.items()}
    return override_settings(ROHRPOST={"MODELS": labels})


def serialize_order(instance: Order, updated_fields: Any, message_type: str) -> dict[str, Any]:
    return {"id": instance.pk, "by": "serializer", "kind": message_type, "seen": updated_fields}


@pytest.fixture
def customer() -> Customer:
    return Customer.objects.create(name="Ada")


# --- groups -------------------------------------------------------------------


def test_default_group_is_model_name_and_pk() -> None:
    with watching(Product={}), capture_notifications() as sent:
        product = Product.objects.create(name="lamp")
    assert sent.groups == [f"product-{product.pk}"]


def test_groups_setting_formats_every_template(customer: Customer) -> None:
    with watching(Order=ORDER), capture_notifications() as sent:
        order = Order.objects.create(customer=customer)
    assert sent.groups == [f"order-{order.pk}", f"customer-{customer.pk}-orders"]
    assert all(n.message["data"]["group"] == n.group for n in sent)


def test_group_name_attribute_beats_groups_setting() -> None:
    with watching(Announcement={"groups": ["announcement-{pk}"]}), capture_notifications() as sent:
        Announcement.objects.create(text="hi")
    assert sent.groups == ["announcements"]


def test_get_group_name_beats_group_name_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Article, "group_name", "static-articles", raising=False)
    with watching(Article={"groups": ["article-{pk}"]}), capture_notifications() as sent:
        Article.objects.create(title="t", channel="sport")
    assert sent.groups == ["articles-sport"]


def test_invalid_group_names_are_logged_and_skipped(
    customer: Customer, caplog: pytest.LogCaptureFixture
) -> None:
    options = {**ORDER, "groups": ["order-{pk}", "notes-{note}"]}
    with watching(Order=options), capture_notifications() as sent:
        order = Order.objects.create(customer=customer, note="has spaces!")
    assert sent.groups == [f"order-{order.pk}"]
    assert "invalid group name 'notes-has spaces!'" in caplog.text
    assert "shop.Order" in caplog.text


# --- payload ------------------------------------------------------------------


def test_default_payload_is_only_the_id() -> None:
    with watching(Product={}), capture_notifications() as sent:
        product = Product.objects.create(name="lamp", price=3)
    assert sent[0].object == {"id": product.pk}


def test_configured_fields_are_sent_with_the_pk_as_id(customer: Customer) -> None:
    with watching(Order=ORDER), capture_notifications() as sent:
        order = Order.objects.create(customer=customer, status="new", total=decimal.Decimal("2.50"))
    assert sent[0].object == {
        "id": order.pk,
        "status": "new",
        "total": "2.50",
        "customer": customer.pk,
    }
    assert sent[0].message["type"] == "subscription-update"
    assert sent[0].message["data"]["type"] == "create"


def test_serializer_setting_beats_fields(customer: Customer) -> None:
    options = {**ORDER, "serializer": "tests.test_core_messages.serialize_order"}
    with watching(Order=options), capture_notifications() as sent:
        order = Order.objects.create(customer=customer)
        order.status = "paid"
        order.save()
    assert sent[0].object == {"id": order.pk, "by": "serializer", "kind": "create", "seen": None}
    assert sent[2].object == {
        "id": order.pk,
        "by": "serializer",
        "kind": "update",
        "seen": ["status"],
        "updated_fields": ["status"],
    }


def test_model_hook_beats_serializer_setting() -> None:
    options = {"serializer": "tests.test_core_messages.serialize_order"}
    with watching(Article=options), capture_notifications() as sent:
        article = Article.objects.create(title="t")
    assert sent[0].object == {"id": article.pk, "title": "t", "hook": "create"}


def test_payload_keeps_its_own_updated_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    def data(self: Article, updated_fields: Any, message_type: str) -> dict[str, Any]:
        return {"id": self.pk, "updated_fields": "mine"}

    monkeypatch.setattr(Article, "get_push_notification_data", data)
    with watching(Article={}), capture_notifications() as sent:
        article = Article.objects.create(title="t")
        article.title = "u"
        article.save()
    assert sent[1].object == {"id": article.pk, "updated_fields": "mine"}


def test_values_use_djangos_json_encoder() -> None:
    with watching(Product={"fields": ["code", "price"]}), capture_notifications() as sent:
        product = Product.objects.create(name="x", price=decimal.Decimal("1.10"))
    assert sent[0].object == {"id": product.pk, "code": str(product.code), "price": "1.10"}


# --- updated_fields -----------------------------------------------------------


def test_updated_fields_come_from_the_tracker(customer: Customer) -> None:
    with watching(Order=ORDER):
        order = Order.objects.create(customer=customer)
        with capture_notifications() as sent:
            order.total = 9
            order.status = "paid"
            order.save()
    assert [n.object["updated_fields"] for n in sent] == [["status", "total"]] * 2


def test_updated_fields_come_from_save_update_fields(customer: Customer) -> None:
    with watching(Order=ORDER):
        order = Order.objects.create(customer=customer)
        with capture_notifications() as sent:
            order.status = "paid"
            order.total = 3  # changed, but not saved
            order.save(update_fields=["status", "note"])
    assert sent[0].object["updated_fields"] == ["status"]


def test_update_changing_no_watched_field_sends_nothing(customer: Customer) -> None:
    with watching(Order=ORDER):
        order = Order.objects.create(customer=customer)
        with capture_notifications() as sent:
            order.save()
            order.note = "not watched"
            order.save()
            order.secret = "excluded"
            order.save()
    assert sent == []


def test_excluded_fields_never_appear(customer: Customer) -> None:
    options = {"exclude": ["secret"], "groups": ["order-{pk}"]}
    with watching(Order=options):
        order = Order.objects.create(customer=customer, secret="s1")
        with capture_notifications() as sent:
            order.secret = "s2"
            order.status = "paid"
            order.save()
            order.save(update_fields=["secret"])
    assert len(sent) == 1
    assert sent[0].object == {"id": order.pk, "updated_fields": ["status"]}
    assert "secret" not in sent[0].text
    assert "s2" not in sent[0].text


def test_existing_field_tracker_is_reused() -> None:
    with watching(Ticket={}), capture_notifications() as sent:
        ticket = Ticket.objects.create(subject="s")
        ticket.state = "closed"
        ticket.save()
    assert not hasattr(Ticket, "_rohrpost_tracker")
    assert sent[1].object["updated_fields"] == ["state"]


def test_attached_tracker_is_limited_to_watched_fields(customer: Customer) -> None:
    # testproject.settings watches status, total and customer of shop.Order.
    order = Order.objects.create(customer=customer)
    tracker = order.__dict__["__rohrpost_tracker"]
    assert set(tracker.fields) == {"status", "total", "customer"}
    with watching(Order={"fields": ["status"]}):
        assert [f.name for f in watched_models.get(Order).tracker.fields] == ["status"]


# --- events and mixins --------------------------------------------------------


def test_events_setting_filters_messages(customer: Customer) -> None:
    with watching(Order={**ORDER, "events": ["delete"]}), capture_notifications() as sent:
        order = Order.objects.create(customer=customer)
        order.status = "x"
        order.save()
        pk = order.pk
        order.delete()
    assert [n.type for n in sent] == ["delete", "delete"]
    assert sent[0].object == {"id": pk, "status": "x", "total": 0, "customer": customer.pk}


def test_mixins_opt_models_in_without_settings() -> None:
    with override_settings(ROHRPOST={}), capture_notifications() as sent:
        note = Announcement.objects.create(text="a")
        note.text = "b"
        note.save()  # NotifyOnCreate + NotifyOnDelete: no update
        note.delete()
        Article.objects.create(title="x")  # NotifyOnChange
        Product.objects.create(name="not watched")
    assert [(n.group, n.type) for n in sent] == [
        ("announcements", "create"),
        ("announcements", "delete"),
        ("articles-news", "create"),
    ]


def test_models_not_listed_send_nothing() -> None:
    with override_settings(ROHRPOST={}), capture_notifications() as sent:
        Customer.objects.create(name="x")
    assert sent == []


def test_a_failing_hook_is_logged_and_save_succeeds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Article, updated_fields: Any, message_type: str) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(Article, "get_push_notification_data", broken)
    with caplog.at_level(logging.ERROR), capture_notifications() as sent:
        article = Article.objects.create(title="t")
    assert Article.objects.filter(pk=article.pk).exists()
    assert sent == []
    assert "Could not notify shop.Article" in caplog.text


def test_group_name_attribute_is_formatted_with_the_pk_like_rohrpost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Announcement, "group_name", "announcement-{pk}")
    with watching(Announcement={}), capture_notifications() as sent:
        note = Announcement.objects.create(text="hi")
        assert watched_models.can_produce(f"announcement-{note.pk}")
        assert not watched_models.can_produce("announcement-x")
    assert sent.groups == [f"announcement-{note.pk}"]
