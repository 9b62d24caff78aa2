"""Stopping with the server, and memberships renewed on every layer.

The real servers (uvicorn, daphne) get SIGTERM in
tests/integration/test_shutdown.py; these check each mechanism in one
process, fast.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from django.contrib.auth.models import User
from django.test import override_settings

from rohrpost_signals.core import membership
from rohrpost_signals.core.dispatch import LoopSender, Outgoing
from tests.helpers import aeventually
from tests.ws import connect, request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

EVENT = {"type": "rohrpost.message", "message": '{"id":1,"type":"news"}'}
#: Seconds an in-memory membership lives without renewal in the renewal test.
SHORT_EXPIRY = 1


class TimeoutOnCancelLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """A cancelled receive raises TimeoutError, as redis-py's does when the
    cancellation meets the end of its read timeout."""

    async def receive(self, channel: str) -> dict[str, Any]:
        try:
            return await super().receive(channel)  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            raise TimeoutError("Timeout reading from 127.0.0.1:6379") from None


class SwallowsCancelLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """A receive that drops its first cancellation and waits on, as one does in
    redis-py whose ``asyncio.wait_for`` drops it before Python 3.12."""

    async def receive(self, channel: str) -> dict[str, Any]:
        try:
            return await super().receive(channel)  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            return await super().receive(channel)  # type: ignore[no-any-return]


class StallsLeavingLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """Leaving a user's control group hangs, as on a layer that stalls while the server stops."""

    stalled: asyncio.Event

    async def group_discard(self, group: str, channel: str) -> None:
        if "user." in group and not self.stalled.is_set():
            self.stalled.set()
            await asyncio.Event().wait()  # until cancelled
        await super().group_discard(group, channel)


def use_layer(backend: dict[str, Any]) -> Iterator[None]:
    with override_settings(CHANNEL_LAYERS={"default": backend}):
        channel_layers.backends.clear()
        yield
    channel_layers.backends.clear()


@pytest.fixture
def memory_layer() -> Iterator[None]:
    """These tests read the in-memory layer's own membership table, whatever RPS_LAYER says."""
    yield from use_layer({"BACKEND": "channels.layers.InMemoryChannelLayer"})


@pytest.fixture
def short_expiry_memory_layer() -> Iterator[None]:
    backend = {
        "BACKEND": "channels.layers.InMemoryChannelLayer",
        "CONFIG": {"group_expiry": SHORT_EXPIRY},
    }
    yield from use_layer(backend)


@pytest.fixture
def timeout_on_cancel_layer() -> Iterator[None]:
    yield from use_layer({"BACKEND": f"{__name__}.TimeoutOnCancelLayer"})


@pytest.fixture
def swallows_cancel_layer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(membership, "CHECK_INTERVAL", 0.02)
    yield from use_layer({"BACKEND": f"{__name__}.SwallowsCancelLayer"})


@pytest.fixture
def stalls_leaving_layer() -> Iterator[None]:
    yield from use_layer({"BACKEND": f"{__name__}.StallsLeavingLayer"})


async def ends_after_disconnect(ws: Any) -> None:
    """The client leaves; the consumer returns by itself (not cancelled by the test)."""
    await ws.send_input({"type": "websocket.disconnect", "code": 1001})
    await asyncio.wait({ws.future}, timeout=10)
    assert ws.future.done(), "the consumer outlived its socket"
    assert not ws.future.cancelled()
    ws.future.result()


def members(group: str) -> set[str]:
    return set(get_channel_layer().groups.get(group, {}))


async def test_memory_layer_memberships_are_renewed_before_group_expiry(
    user: User, short_expiry_memory_layer: None
) -> None:
    ws = await connect("async", user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    layer = get_channel_layer()
    [joined_at] = layer.groups["order-1"].values()
    # The in-memory layer drops a membership once int(now) - group_expiry
    # passed its join time: wait until one that was never renewed is gone ...
    await aeventually(
        lambda: int(time.time()) - SHORT_EXPIRY > joined_at + 1, what="the expiry to pass"
    )
    # ... and check it was renewed meanwhile: group_send drops expired members first.
    await layer.group_send("order-1", EVENT)
    assert await ws.receive_from(timeout=5) == EVENT["message"]
    [renewed_at] = layer.groups["order-1"].values()
    assert renewed_at > joined_at
    await ws.disconnect()


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_consumer_ends_when_its_cancelled_receive_surfaces_as_a_timeout(
    kind: str, user: User, timeout_on_cancel_layer: None
) -> None:
    """Before the fix the guard retried the receive and the consumer never ended:
    uvicorn then waited for it forever after SIGTERM."""
    ws = await connect(kind, user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    await ends_after_disconnect(ws)
    assert members("order-1") == set()


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_consumer_ends_when_the_layer_swallows_the_cancellation_of_its_receive(
    kind: str, user: User, swallows_cancel_layer: None
) -> None:
    """Before the fix the consumer waited for its receive forever (redis-py on
    Python < 3.12), and so did uvicorn after SIGTERM."""
    ws = await connect(kind, user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    await ends_after_disconnect(ws)
    assert members("order-1") == set()


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_consumer_the_server_cancels_says_going_away_and_leaves_its_groups(
    kind: str, user: User, memory_layer: None
) -> None:
    """daphne's stop: every application instance is cancelled, no disconnect is sent."""
    ws = await connect(kind, user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    await request(ws, id=2, type="subscribe", data={"group": "order-2"})
    assert len(members("order-1")) == len(members("order-2")) == 1

    ws.future.cancel()
    await asyncio.wait({ws.future}, timeout=10)
    assert ws.future.cancelled()
    assert ws.output_queue.get_nowait() == {"type": "websocket.close", "code": 1001}
    assert members("order-1") == members("order-2") == set()
    assert not any(get_channel_layer().groups.values()), "a control group was left joined"


async def test_a_consumer_cancelled_while_leaving_its_control_groups_still_leaves_them(
    user: User, stalls_leaving_layer: None
) -> None:
    """A stop that lands while the disconnect is leaving groups: nothing stays joined."""
    layer = get_channel_layer()
    layer.stalled = asyncio.Event()
    ws = await connect("async", user)
    assert any("user." in group for group in layer.groups), "the socket has no control group"

    await ws.send_input({"type": "websocket.disconnect", "code": 1001})
    await asyncio.wait_for(layer.stalled.wait(), 10)
    ws.future.cancel()
    await asyncio.wait({ws.future}, timeout=10)
    assert ws.future.done()
    assert not any(layer.groups.values()), "a control group was left joined"


async def test_a_consumer_cancelled_after_its_socket_closed_sends_no_close_frame(
    user: User, memory_layer: None
) -> None:
    ws = await connect("async", user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    await ws.send_input({"type": "websocket.disconnect", "code": 1006})
    await aeventually(lambda: members("order-1") == set(), what="the disconnect handled")
    if not ws.future.done():
        ws.future.cancel()
        await asyncio.wait({ws.future}, timeout=10)
    assert ws.output_queue.empty()


def _news(n: int) -> Outgoing:
    text = json.dumps({"id": n, "type": "news"})
    return Outgoing("default", "news", text, f"news {n}")


async def test_a_sender_the_loop_cancels_sends_what_is_queued_first() -> None:
    """``asyncio.run`` (uvicorn) cancels the sender once the server returned."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("news", channel)
    sender = LoopSender(asyncio.get_running_loop())
    sender.push(_news(0))
    await aeventually(lambda: sender.completed == 1, what="the sender to start")
    for n in range(1, 4):
        sender.push(_news(n))
    task = sender._task
    assert task is not None
    task.cancel()  # before the sender woke up for the three new messages
    await asyncio.wait({task}, timeout=10)
    assert task.cancelled()
    assert sender.completed == 4
    received = [json.loads((await layer.receive(channel))["message"])["id"] for _ in range(4)]
    assert received == [0, 1, 2, 3]
