"""Hostile frames and greedy clients against both consumers (in-process, fast).

The same attacks against real servers and Redis are in
``tests/integration/test_hostile_clients.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.test import override_settings

from rohrpost_signals.conf import conf
from rohrpost_signals.core import dispatch, history
from rohrpost_signals.core.limits import OUTGOING_CLOSE_CODE
from rohrpost_signals.protocols.rohrpost import main
from shop.models import Product
from tests.ws import CONSUMERS, assert_alive, connect, reply, request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

KINDS = list(CONSUMERS)


def settings_with(**values: Any) -> Any:
    return override_settings(ROHRPOST={**conf.raw, **values})


async def answer_to(ws: Any, text: str) -> dict[str, Any]:
    await ws.send_input({"type": "websocket.receive", "text": text})
    raw = await ws.receive_from(timeout=10)
    assert raw.isascii(), raw
    value: dict[str, Any] = json.loads(raw)
    return value


HOSTILE = [
    # (frame, expected reply id, expected code or None for a normal reply)
    ("[" * 960 + "]" * 960, None, "bad-json"),
    ('{"id": 1, "type": "ping", "data": ' + "[" * 2000 + "]" * 2000 + "}", None, "bad-json"),
    ('{"id": "\\ud800", "type": "ping"}', "\ud800", None),
    ('{"id": 1, "type": "\\udfff"}', 1, "unknown-type"),
    ('{"id": 1, "type": "ping", "data": "\\ud800\\udbff"}', 1, None),
    ('{"id": 1, "type": "subscribe", "data": {"group": "\\ud800"}}', 1, "bad-request"),
    ('{"id": 1, "type": "ping", "data": {"\\ud800": 1}}', 1, None),
    ('{"id": NaN, "type": "ping"}', None, "bad-json"),
    ('{"id": Infinity, "type": "ping"}', None, "bad-json"),
    ('{"id": 1e400, "type": "ping"}', None, "bad-json"),
    ('{"id": 1, "type": "ping", "data": [-Infinity]}', None, "bad-json"),
    ('{"id": 18446744073709551616, "type": "ping"}', None, "bad-id"),
    ('{"id": 9007199254740992, "type": "ping"}', None, "bad-id"),
    ('{"id": 9007199254740991, "type": "ping"}', 9007199254740991, None),
    ('{"id": 1.5, "type": "ping"}', None, "bad-id"),
    ('{"id": true, "type": "ping"}', None, "bad-id"),
    ('{"id": "' + "x" * 129 + '", "type": "ping"}', None, "bad-id"),
    ('{"id": 1, "type": "ping", "data": 1' + "0" * 5000 + "}", None, "bad-json"),
]


@pytest.mark.parametrize("kind", KINDS)
async def test_hostile_frames_get_one_browser_readable_reply(kind: str, user: User) -> None:
    ws = await connect(kind, user)
    for frame, reply_id, code in HOSTILE:
        answer = await answer_to(ws, frame)
        assert answer["id"] == reply_id, frame[:80]
        assert answer.get("code") == code, (frame[:80], answer)
        assert await ws.receive_nothing(timeout=0.01)
    await assert_alive(ws)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.usefixtures("memory_layer")
async def test_an_escaping_exception_still_leaves_every_group(
    kind: str, user: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Injected: forwarding a group message raises, which ends the consumer."""
    cls = CONSUMERS[kind]
    left: list[int] = []
    original_disconnect = cls.disconnect

    def boom(self: Any, event: dict[str, Any]) -> None:
        raise RuntimeError("injected")

    if kind == "async":

        async def disconnect(self: Any, code: int) -> None:
            left.append(code)
            await original_disconnect(self, code)

    else:

        def disconnect(self: Any, code: int) -> None:  # type: ignore[misc]
            left.append(code)
            original_disconnect(self, code)

    monkeypatch.setattr(cls, "disconnect", disconnect)
    layer = get_channel_layer()
    group = f"product-{random.randrange(10**12)}"
    ws = await connect(kind, user)
    await request(ws, id=1, type="subscribe", data=group)
    assert len(layer.groups[group]) == 1
    monkeypatch.setattr(cls, "rohrpost_message", boom)
    await layer.group_send(group, {"type": "rohrpost.message", "message": "{}"})
    with pytest.raises(RuntimeError, match="injected"):
        await ws.receive_output(timeout=5)
    assert left == [1011]
    assert group not in layer.groups or not layer.groups[group]


@pytest.mark.parametrize("kind", KINDS)
async def test_requests_over_the_rate_get_rate_limited(kind: str) -> None:
    with settings_with(MAX_REQUEST_BURST=5, MAX_REQUESTS_PER_SECOND=0.01):
        ws = await connect(kind)
        answers = [await request(ws, id=n, type="ping") for n in range(8)]
        assert [a["type"] for a in answers[:5]] == ["pong"] * 5
        assert [a.get("code") for a in answers[5:]] == ["rate-limited"] * 3
        assert [a["id"] for a in answers[5:]] == [5, 6, 7]
        assert answers[5]["error"] == (
            "Too many requests on this connection (the limit is 0.01 per second); slow down."
        )
        await ws.disconnect()


async def make_history(count: int) -> tuple[str, int]:
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    for n in range(count):
        product.name = f"name {n}"
        await database_sync_to_async(product.save)()
    await dispatch.aflush()
    group = f"product-{product.pk}"
    head = (await history.store_for(conf.CHANNEL_LAYER).replay(group, None)).last_seq
    return group, head


@pytest.mark.parametrize("kind", KINDS)
async def test_a_repeated_subscribe_does_not_replay_again(kind: str, user: User) -> None:
    group, head = await make_history(20)
    ws = await connect(kind, user)
    data = {"group": group, "since": head - 10}
    assert (await request(ws, id=1, type="subscribe", data=data))["data"]["seq"] == head
    assert [(await reply(ws))["data"]["seq"] for _ in range(10)] == list(range(head - 9, head + 1))
    for n in range(5):
        answer = await request(ws, id=2 + n, type="subscribe", data=data)
        assert answer["data"]["seq"] == head
        assert await ws.receive_nothing(timeout=0.05)
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_replays_over_the_byte_budget_become_resync_required(kind: str, user: User) -> None:
    group, head = await make_history(30)
    with settings_with(MAX_REPLAY_BYTES_PER_MINUTE=8000):
        ws = await connect(kind, user)
        replayed = 0
        for n in range(10):
            # Unsubscribe in between: each subscribe is a fresh one, with a replay.
            await request(ws, id=f"u{n}", type="unsubscribe", data=group)
            data = {"group": group, "since": head - 20}
            assert (await request(ws, id=n, type="subscribe", data=data))["data"]["seq"] == head
            first = await reply(ws)
            if first["type"] == "resync-required":
                break
            replayed += 1
            for _ in range(19):
                await reply(ws)
        else:
            pytest.fail("the replay budget never ran out")
        assert first["data"]["group"] == group
        assert replayed >= 1
        assert await ws.receive_nothing(timeout=0.05)
        await assert_alive(ws)
        await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_unsubscribe_drops_the_sockets_bookkeeping(kind: str, user: User) -> None:
    group, head = await make_history(3)
    ws = await connect(kind, user)
    instances: list[Any] = []
    original = CONSUMERS[kind].rohrpost_ping

    def capture(self: Any, req: dict[str, Any]) -> Any:
        instances.append(self)
        return original(self, req)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CONSUMERS[kind], "rohrpost_ping", capture)
        await request(ws, id=1, type="subscribe", data={"group": group, "since": head})
        await assert_alive(ws)
        [consumer] = instances
        assert group in consumer.cursors
        await request(ws, id=2, type="unsubscribe", data=group)
        assert group not in consumer.cursors
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_socket_that_does_not_read_is_closed(kind: str) -> None:
    with settings_with(MAX_OUTGOING_BYTES=4000):
        ws = await connect(kind)
        for n in range(5):
            await ws.send_to(text_data=json.dumps({"id": n, "type": "ping", "data": "x" * 900}))
        # The communicator keeps every frame: nothing is read until the close.
        frames = []
        while True:
            message = await ws.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                break
            frames.append(message)
        assert message["code"] == OUTGOING_CLOSE_CODE
        assert len(frames) == 4  # 4 x ~940 bytes fit; the 5th would not
        await ws.send_to(text_data=json.dumps({"id": 9, "type": "ping", "data": "x" * 900}))
        assert await ws.receive_nothing(timeout=0.1)  # nothing more is sent
        await ws.disconnect()


class HungLayer:
    """The in-memory layer, with ``group_add`` hanging or failing like a stuck Redis."""

    def __init__(self, layer: Any, mode: str) -> None:
        self._layer = layer
        self._mode = mode

    def __getattr__(self, name: str) -> Any:
        return getattr(self._layer, name)

    async def group_add(self, group: str, channel: str) -> None:
        if self._mode == "hang":
            await asyncio.Event().wait()
        if self._mode == "bug":
            raise TypeError("a bug in the layer")
        raise ConnectionError("Redis is down")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("mode", "code"), [("hang", "timeout"), ("down", "unavailable"), ("bug", "internal-error")]
)
async def test_subscribe_with_a_stuck_layer_answers_with_an_error(
    kind: str,
    mode: str,
    code: str,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stuck = HungLayer(get_channel_layer(), mode)
    monkeypatch.setattr("channels.consumer.get_channel_layer", lambda alias: stuck)
    with settings_with(SUBSCRIBE_TIMEOUT=0.2), caplog.at_level(logging.ERROR, "rohrpost_signals"):
        ws = await connect(kind, user)
        answer = await request(ws, id=1, type="subscribe", data="product-1")
        assert answer["code"] == code, answer
        assert answer["id"] == 1
        await assert_alive(ws)
        await ws.disconnect()
    # Only a bug is logged, with its traceback; an outage is the client's to retry.
    logged = [r for r in caplog.records if r.exc_info and "product-1" in r.getMessage()]
    assert len(logged) == (1 if mode == "bug" else 0), caplog.text


async def test_a_crash_is_logged_by_the_guard(caplog: pytest.LogCaptureFixture) -> None:
    ws = await connect("async")
    with caplog.at_level(logging.ERROR, "rohrpost_signals"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(main, "_resolve", lambda *a: 1 / 0)
        answer = json.loads(await (await _send(ws, '{"id": 1, "type": "ping"}')))
    assert answer["code"] == "internal-error"
    assert answer["id"] is None
    assert "Answering a frame failed" in caplog.text
    await assert_alive(ws)
    await ws.disconnect()


async def _send(ws: Any, text: str) -> Any:
    await ws.send_to(text_data=text)
    return ws.receive_from(timeout=5)
