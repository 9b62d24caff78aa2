"""The worker's head check: it catches up stuck sockets and never floods the layer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rohrpost_signals.core import history, repair
from rohrpost_signals.core.repair import Cursor, GroupFeed
from tests.helpers import aeventually
from tests.test_repair import GROUP

EPOCH = "e1"


class CountingLayer:
    """Records catch-ups, and how many were in flight at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, channel: str, event: dict[str, Any]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # sends that ran side by side would overlap here
        finally:
            self.in_flight -= 1
        self.sent.append((channel, event))


class Socket:
    def __init__(self, layer: CountingLayer, name: str, seq: int) -> None:
        self.channel_layer = layer
        self.channel_name = name
        self.cursor: Cursor | None = Cursor(EPOCH, seq)

    def delivery_cursor(self, group: str) -> Cursor | None:
        return self.cursor


class Heads:
    """A history whose every group stands at ``seq``."""

    def __init__(self, seq: int) -> None:
        self.seq = seq

    async def heads(self, groups: list[str]) -> dict[str, history.Head]:
        return {group: history.Head(self.seq, EPOCH) for group in groups}


@pytest.fixture
def heads(monkeypatch: pytest.MonkeyPatch) -> Heads:
    store = Heads(10)
    monkeypatch.setattr(history, "store_for", lambda alias: store)
    return store


def feed_of(*sockets: Socket) -> GroupFeed:
    feed = GroupFeed("default", asyncio.get_running_loop())
    with feed._lock:  # track() would start the periodic task; these tests call _check
        for socket in sockets:
            feed._members.setdefault(GROUP, repair.weakref.WeakSet()).add(socket)
    return feed


async def test_a_socket_stuck_behind_the_head_is_caught_up_at_the_second_check(
    heads: Heads,
) -> None:
    layer = CountingLayer()
    socket = Socket(layer, "stuck", 7)
    feed = feed_of(socket)
    await feed._check([GROUP])
    assert layer.sent == []  # the head read a moment ago may still be on its way
    await feed._check([GROUP])
    assert layer.sent == [
        ("stuck", {"type": repair.CATCH_UP_EVENT, "group": GROUP, "seq": 10, "epoch": EPOCH})
    ]


async def test_a_socket_still_getting_the_group_is_left_to_its_backlog(heads: Heads) -> None:
    layer = CountingLayer()
    socket = Socket(layer, "busy", 3)
    feed = feed_of(socket)
    await feed._check([GROUP])
    socket.cursor = Cursor(EPOCH, 5)  # behind the head, but messages keep arriving
    await feed._check([GROUP])
    assert layer.sent == []
    await feed._check([GROUP])  # now nothing arrived for a whole check
    assert [event["seq"] for _, event in layer.sent] == [10]


async def test_catch_ups_go_out_one_at_a_time(heads: Heads) -> None:
    """A task each would take a Redis connection each: redis-py 8 allows 100."""
    layer = CountingLayer()
    sockets = [Socket(layer, f"socket-{n}", 2) for n in range(300)]
    feed = feed_of(*sockets)
    await feed._check([GROUP])
    await feed._check([GROUP])
    assert len(layer.sent) == 300
    assert layer.most_in_flight == 1


async def test_a_bug_does_not_end_the_head_check(
    heads: Heads, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(repair, "HEAD_CHECK_INTERVAL", 0.01)
    layer = CountingLayer()
    stuck = Socket(layer, "stuck", 4)
    broken = Socket(layer, "broken", 4)
    failures = iter([RuntimeError("a bug")])

    def cursor_once_broken(group: str) -> Cursor | None:
        for error in failures:
            raise error
        return Cursor(EPOCH, 4)

    broken.delivery_cursor = cursor_once_broken  # type: ignore[method-assign]
    feed = GroupFeed("default", asyncio.get_running_loop())
    feed.track(GROUP, broken)
    feed.track(GROUP, stuck)
    await aeventually(lambda: {"stuck", "broken"} <= {name for name, _ in layer.sent})
    assert "The head check of group histories failed with a bug." in caplog.text
    assert feed._task is not None
    assert not feed._task.done()
    feed.untrack(GROUP, stuck)
    feed.untrack(GROUP, broken)
    await asyncio.wait_for(feed._task, 5)  # no groups left: it ends
