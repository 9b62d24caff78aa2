"""rohrpost 4.1 behaviour that projects moving over rely on (docs/migrating.rst)."""

from __future__ import annotations

import decimal
import json
from collections import UserDict, UserList
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User

from rohrpost_signals.core.watching import watched_models
from rohrpost_signals.handlers import handle_ping
from rohrpost_signals.main import ahandle_rohrpost_message, handle_rohrpost_message
from rohrpost_signals.message import (
    TolerantJSONEncoder,
    build_message,
    send_error,
    send_message,
    send_success,
)
from rohrpost_signals.registry import HANDLERS, HandlerAlreadyRegistered, rohrpost_handler
from rohrpost_signals.testing import FakeConsumer, capture_notifications
from shop.models import Product
from tests.ws import CONSUMERS, WithUser, assert_alive, connect, reply, request

KINDS = list(CONSUMERS)


class TextDouble:
    """A consumer double as rohrpost's own tests have: ``send`` takes the text positionally."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def send(self, message: str) -> None:
        self.frames.append(json.loads(message))


@pytest.fixture
def custom_handlers() -> Iterator[None]:
    before = dict(HANDLERS)
    yield
    HANDLERS.clear()
    HANDLERS.update(before)


@pytest.fixture
def product_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Give ``Product`` hooks or attributes for one test, and rebuild the registry both ways."""

    def install(**attributes: Any) -> None:
        for name, value in attributes.items():
            monkeypatch.setattr(Product, name, value, raising=False)
        watched_models.rebuild()

    yield install
    monkeypatch.undo()
    watched_models.rebuild()


# --- send_message and friends ---------------------------------------------------


def test_send_message_without_an_id_sends_none() -> None:
    double = TextDouble()
    send_message(consumer=double, handler="note")
    send_message(consumer=double, handler=None, data={"a": 1})
    assert double.frames == [{"type": "note"}, {"data": {"a": 1}}]


def test_send_error_without_id_or_type_sends_only_the_error() -> None:
    double = TextDouble()
    send_error(consumer=double, handler=None, message_id=None, error="boom")
    send_error(consumer=double, handler="x", message_id=0, error="bad")
    assert double.frames == [{"error": "boom"}, {"id": 0, "type": "x", "error": "bad"}]


def test_an_empty_message_is_a_value_error() -> None:
    double = TextDouble()
    with pytest.raises(ValueError, match="empty message"):
        send_message(consumer=double, handler=None, message_id=None)
    assert double.frames == []


def test_send_success_needs_an_id_and_a_type() -> None:
    double = TextDouble()
    send_success(consumer=double, handler="done", message_id=3, data={"ok": True})
    assert double.frames == [{"id": 3, "type": "done", "data": {"ok": True}}]
    with pytest.raises(ValueError, match="ID and handler"):
        send_success(consumer=double, handler="done", message_id=None)


def test_build_message_returns_rohrposts_dict() -> None:
    assert build_message(handler="x") == {"type": "x"}
    assert build_message(handler="x", message_id=4, error="e", data={"a": 1}) == {
        "id": 4,
        "type": "x",
        "error": "e",
        "data": {"a": 1},
    }
    generated = build_message(handler="x", generate_id=True)["id"]
    assert isinstance(generated, int)
    assert 0 < generated < 2**53


def test_sets_mappings_and_collections_encode_as_in_rohrpost() -> None:
    double = TextDouble()
    data = {
        "tags": {"a"},
        "frozen": frozenset({1}),
        "mapping": UserDict(b=2),
        "items": UserList([1, 2]),
        "price": decimal.Decimal("12.50"),
    }
    send_message(consumer=double, handler="x", message_id=1, data=data)
    assert double.frames[0]["data"] == {
        "tags": ["a"],
        "frozen": [1],
        "mapping": {"b": 2},
        "items": [1, 2],
        "price": "12.50",  # Django's encoder, kept on purpose (migrating.rst)
    }
    assert TolerantJSONEncoder().encode(UserDict(a={1})) == '{"a": [1]}'


def test_objects_nobody_can_encode_still_raise() -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        send_message(consumer=TextDouble(), handler="x", data={"x": object()})


@pytest.mark.django_db(transaction=True)
def test_send_to_group_takes_rohrposts_finished_message() -> None:
    from rohrpost_signals.message import send_to_group

    frame = {"id": 1, "type": "headline", "data": {"tags": {"a"}}}
    with capture_notifications() as sent:
        send_to_group(group_name="news", message=frame)
        send_to_group("news", frame)
        send_to_group(group_name="news", message='{"type":"as-is"}')
        send_to_group("news", "headline", data={"n": 1})
    assert [n.message for n in sent[:3]] == [
        {"id": 1, "type": "headline", "data": {"tags": ["a"]}},
        {"id": 1, "type": "headline", "data": {"tags": ["a"]}},
        {"type": "as-is"},
    ]
    assert sent[3].message["type"] == "headline"
    assert sent[3].message["data"] == {"n": 1}
    with pytest.raises(ValueError, match="not a valid Channels group name"):
        send_to_group(group_name="no spaces", message=frame)
    with pytest.raises(TypeError, match="needs a handler"):
        send_to_group("news")


# --- handlers ------------------------------------------------------------------


def test_a_handler_without_a_name_is_registered_under_its_function_name(
    custom_handlers: None,
) -> None:
    @rohrpost_handler()
    def shout(consumer: Any, request: dict[str, Any]) -> None:
        pass

    @rohrpost_handler
    def whisper(consumer: Any, request: dict[str, Any]) -> None:
        pass

    assert HANDLERS["shout"] is shout
    assert HANDLERS["whisper"] is whisper


def test_registering_a_taken_name_is_a_value_error(custom_handlers: None) -> None:
    with pytest.raises(ValueError, match=r'^Handler for "ping" is already defined') as info:

        @rohrpost_handler("ping")
        def my_ping(consumer: Any, request: dict[str, Any]) -> None:
            pass

    assert isinstance(info.value, HandlerAlreadyRegistered)
    assert HANDLERS["ping"] is handle_ping


def test_the_fake_consumer_keeps_replies_until_closed() -> None:
    consumer = FakeConsumer(scope={"user": None})
    handle_rohrpost_message(consumer, '{"id": 1, "type": "ping"}')
    consumer.close()
    handle_rohrpost_message(consumer, '{"id": 2, "type": "ping"}')
    assert consumer.data == [{"id": 1, "type": "pong"}]
    assert consumer.closed


def test_handle_ping_answers_on_any_consumer() -> None:
    double = TextDouble()
    handle_ping(consumer=double, request={"id": 123})
    handle_ping(consumer=double, request={"id": 0, "type": "ping", "data": [1]})
    assert double.frames == [{"id": 123, "type": "pong"}, {"id": 0, "type": "pong", "data": [1]}]


def test_the_message_handler_answers_a_test_double(custom_handlers: None) -> None:
    @rohrpost_handler("shout")
    def shout(consumer: Any, request: dict[str, Any]) -> None:
        send_message(consumer, "shout", request["id"], data=request["data"].upper())

    double = TextDouble()
    handle_rohrpost_message(consumer=double, text_data='{"id": 1, "type": "shout", "data": "hi"}')
    handle_rohrpost_message(consumer=double, text_data='{"id": 2, "type": "nope"}')
    handle_rohrpost_message(consumer=double, text_data=[1, 2])  # type: ignore[arg-type]
    assert double.frames[0] == {"id": 1, "type": "shout", "data": "HI"}
    assert double.frames[1]["error"] == "No registered handler called 'nope'."
    assert double.frames[2]["error"].startswith("Could not decode JSON message")


class HandwrittenConsumer(WebsocketConsumer):  # type: ignore[misc]
    """A project's own consumer, as rohrpost's README showed it."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        handle_rohrpost_message(consumer=self, text_data=text_data)


class HandwrittenAsyncConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await ahandle_rohrpost_message(self, text_data, bytes_data)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("consumer", [HandwrittenConsumer, HandwrittenAsyncConsumer])
async def test_a_handwritten_consumer_calls_the_message_handler(
    consumer: type[Any], custom_handlers: None
) -> None:
    @rohrpost_handler("whoami")
    def whoami(consumer: Any, request: dict[str, Any]) -> None:
        user = consumer.scope["user"]
        send_message(consumer, "whoami", request["id"], data={"anonymous": user.is_anonymous})

    @rohrpost_handler("fail")
    def fail(consumer: Any, request: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    app = WithUser(consumer.as_asgi(), AnonymousUser())
    ws = WebsocketCommunicator(app, "/ws/")
    assert (await ws.connect(timeout=10))[0]
    assert await request(ws, id=1, type="whoami") == {
        "id": 1,
        "type": "whoami",
        "data": {"anonymous": True},
    }
    assert (await request(ws, id=2, type="fail"))["code"] == "internal-error"
    refused = await request(ws, id=3, type="subscribe", data={"group": "product-1"})
    assert refused["error"].startswith(f"{consumer.__name__} does not support 'subscribe'")
    await ws.send_to(text_data="[1]")
    assert (await reply(ws))["code"] == "bad-request"
    await assert_alive(ws)
    await ws.disconnect()


# --- group events ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("library_default_policy")
@pytest.mark.parametrize("kind", KINDS)
async def test_a_dict_group_event_is_json_encoded(kind: str, user: User) -> None:
    """rohrpost's consumer encoded dict messages; they must not close the socket."""
    ws = await connect(kind, user)
    assert "error" not in await request(ws, id=1, type="subscribe", data="product-1")
    # Values channels-redis can carry (it packs events with msgpack).
    message = {"id": 7, "type": "custom", "data": {"n": 1.5, "text": "caf\u00e9"}}
    await get_channel_layer().group_send(
        "product-1", {"type": "rohrpost.message", "message": message}
    )
    assert await reply(ws) == message
    await assert_alive(ws)
    await ws.disconnect()


class MarkingEncoder(json.JSONEncoder):
    """Leaves a mark on what it encodes, and refuses messages that ask for it."""

    def encode(self, o: Any) -> str:
        if o.get("refuse"):
            raise TypeError("refused")
        return super().encode({**o, "encoded_by": "MarkingEncoder"})


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("library_default_policy")
@pytest.mark.parametrize("kind", KINDS)
async def test_the_consumers_json_encoder_encodes_dict_events(kind: str, user: User) -> None:
    consumer = type("Custom", (CONSUMERS[kind],), {"json_encoder": MarkingEncoder})
    ws = WebsocketCommunicator(WithUser(consumer.as_asgi(), user), "/ws/rohrpost/")
    assert (await ws.connect(timeout=10))[0]
    assert "error" not in await request(ws, id=1, type="subscribe", data="product-1")
    layer = get_channel_layer()
    event = {"type": "rohrpost.message", "message": {"type": "x", "refuse": True}}
    await layer.group_send("product-1", event)
    event = {"type": "rohrpost.message", "message": {"type": "x"}}
    await layer.group_send("product-1", event)
    # The refused one was logged and dropped; the socket lives on.
    assert await reply(ws) == {"type": "x", "encoded_by": "MarkingEncoder"}
    await assert_alive(ws)
    text = '{"type":"as-is"}'
    await layer.group_send("product-1", {"type": "rohrpost.message", "message": text})
    assert await ws.receive_from(timeout=10) == text  # text is never re-encoded
    await ws.disconnect()


class FloatDecimals(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return float(o)
        return super().default(o)


# --- model hooks ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_keyword_only_hooks_work(product_hooks: Callable[..., None]) -> None:
    def get_group_name(self: Product, *, message_type: str) -> str:
        return f"products-{message_type}"

    def get_push_notification_data(
        self: Product, *, updated_fields: Any = None, message_type: Any = None
    ) -> dict[str, Any]:
        return {"name": self.name, "kind": message_type, "fields": updated_fields}

    product_hooks(
        get_group_name=get_group_name, get_push_notification_data=get_push_notification_data
    )
    with capture_notifications() as sent:
        product = Product.objects.create(name="lamp")
        product.name = "lantern"
        product.save()
    assert [(n.group, n.object) for n in sent] == [
        ("products-create", {"name": "lamp", "kind": "create", "fields": None}),
        (
            "products-update",
            {
                "name": "lantern",
                "kind": "update",
                "fields": ["name"],
                "updated_fields": ["name"],
            },
        ),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_payload_with_a_set_and_a_user_dict_is_sent(product_hooks: Callable[..., None]) -> None:
    def get_push_notification_data(self: Product, updated_fields: Any, message_type: Any) -> Any:
        return UserDict(id=self.pk, tags={"new"})

    product_hooks(get_push_notification_data=get_push_notification_data)
    with capture_notifications() as sent:
        product = Product.objects.create(name="lamp")
    assert [n.object for n in sent] == [{"id": product.pk, "tags": ["new"]}]


@pytest.mark.django_db(transaction=True)
def test_the_models_encoder_attribute_is_used(product_hooks: Callable[..., None]) -> None:
    def get_push_notification_data(self: Product, updated_fields: Any, message_type: Any) -> Any:
        ratio = float("nan") if self.name == "broken" else 1.0
        return {"id": self.pk, "price": self.price, "ratio": ratio}

    product_hooks(get_push_notification_data=get_push_notification_data, encoder=FloatDecimals)
    with capture_notifications() as sent:
        product = Product.objects.create(name="lamp", price=decimal.Decimal("2.50"))
        product.name = "broken"
        product.save()
    # NaN is no JSON a browser reads: null, as with the library's own encoder.
    assert [n.object for n in sent] == [
        {"id": product.pk, "price": 2.5, "ratio": 1.0},
        {"id": product.pk, "price": 2.5, "ratio": None, "updated_fields": ["name"]},
    ]


@pytest.mark.django_db(transaction=True)
def test_a_models_serializer_class_builds_the_payload(product_hooks: Callable[..., None]) -> None:
    class NameSerializer:
        def __init__(self, instance: Product) -> None:
            self.instance = instance

        @property
        def data(self) -> dict[str, Any]:
            return {"serialized": self.instance.name}

    product_hooks(serializer_class=NameSerializer)
    with capture_notifications() as sent:
        product = Product.objects.create(name="lamp")
        product.name = "lantern"
        product.save()
    assert [n.object for n in sent] == [
        {"serialized": "lamp"},
        {"serialized": "lantern", "updated_fields": ["name"]},
    ]


# --- the rohrpost compatibility stage ---------------------------------------------


def test_each_expected_failure_of_rohrposts_suite_names_a_migrating_section() -> None:
    """.ci/stages/12-rohrpost-compat.sh marks these; each must point at real docs."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    path = root / "tests" / "compat_rohrpost" / "expected_failures.py"
    spec = importlib.util.spec_from_file_location("expected_failures", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    migrating = (root / "docs" / "migrating.rst").read_text(encoding="utf-8")
    labels = {label for label, _exception in module.EXPECTED_FAILURES.values()}
    assert labels == set(module.SECTIONS)
    assert [label for label in labels if f".. _{label}:" not in migrating] == []


# --- system checks ------------------------------------------------------------------


@pytest.mark.django_db
def test_unusable_encoder_and_serializer_class_attributes_are_warned_about(
    product_hooks: Callable[..., None],
) -> None:
    from rohrpost_signals.compatchecks import check_model_attributes

    assert check_model_attributes() == []
    product_hooks(encoder="json", serializer_class=lambda product: None)
    assert [w.id for w in check_model_attributes()] == [
        "rohrpost_signals.W060",
        "rohrpost_signals.W061",
    ]
    product_hooks(encoder=FloatDecimals, serializer_class=dict)
    assert check_model_attributes() == []
