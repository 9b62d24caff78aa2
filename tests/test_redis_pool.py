"""A worker's Redis connection pools, with channels-redis' defaults, never run out.

redis-py 8 gives each pool 100 connections and raises ``MaxConnectionsError``
beyond that instead of waiting. These tests put well over 100 sockets on one
worker (this process) and make each need Redis at the same moment.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.contrib.auth.models import User

from rohrpost_signals.core import dispatch, repair
from tests.conftest import own_redis_layer
from tests.test_repair import GROUP, dropped, subscribed
from tests.ws import connect, reply, request

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

SOCKETS = 150


async def test_sockets_subscribing_all_at_once_are_all_answered(
    user: User, caplog: pytest.LogCaptureFixture
) -> None:
    """A reconnect storm: every socket joins and reads the history at the same moment."""
    caplog.set_level(logging.DEBUG, logger="rohrpost_signals")
    with own_redis_layer():
        sockets = [await connect("async", user) for _ in range(SOCKETS)]
        answers = await asyncio.gather(
            *(request(ws, id=1, type="subscribe", data={"group": GROUP}) for ws in sockets)
        )
        await asyncio.gather(*(ws.disconnect() for ws in sockets))
    assert [answer for answer in answers if "error" in answer] == []
    assert "receive failed" not in caplog.text
    assert "Too many connections" not in caplog.text  # the sockets also closed all at once


async def test_a_worker_full_of_stuck_sockets_keeps_its_redis_pool(
    user: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The sockets of one worker all miss the last message, on channels-redis' defaults.

    The head check catches every one of them up without running out of the
    layer's connection pool (redis-py 8 allows 100 and raises beyond that),
    and the sockets' own receive never fails on the way.
    """
    monkeypatch.setattr(repair, "HEAD_CHECK_INTERVAL", 0.05)
    caplog.set_level(logging.DEBUG, logger="rohrpost_signals")
    with own_redis_layer():
        sockets = []
        for _ in range(SOCKETS):
            ws, head = await subscribed("async", user)
            sockets.append(ws)
        rejoins = dispatch.stats.rejoins
        seq = await dropped(1)
        for ws in sockets:
            assert (await reply(ws, timeout=30))["data"]["seq"] == seq
        for ws in sockets:
            await ws.disconnect()
    assert seq == head["seq"] + 1
    assert "Too many connections" not in caplog.text
    assert "receive failed" not in caplog.text
    assert dispatch.stats.rejoins == rejoins
