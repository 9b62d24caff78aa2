"""channels-redis over several hosts: a worker's events to its own sockets arrive.

channels-redis picks the shard of ``send`` by the whole channel name but reads
a process's channels on the shard of their process part, so most sends from
a worker to its own sockets were never read. The head check's catch-ups and
the periodic re-check both travel that way.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth.models import User

from rohrpost_signals import _compat
from rohrpost_signals.core import repair
from tests.conftest import own_redis_layer
from tests.test_repair import GROUP, dropped, subscribed
from tests.ws import reply

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

SHARDS = 2


def misrouted(channel_name: str) -> bool:
    """Whether channels-redis' own ``send`` puts this channel's messages where it never reads."""
    process_part = channel_name[: channel_name.index("!") + 1]
    return _compat.redis_shard(channel_name, SHARDS) != _compat.redis_shard(process_part, SHARDS)


async def test_the_installed_channels_redis_still_misroutes_sends() -> None:
    """If this fails, channels-redis fixed it: ``selfsend`` can use plain ``send`` again."""
    with own_redis_layer(shards=SHARDS):
        layer = get_channel_layer()
        channels = [await layer.new_channel() for _ in range(64)]
        channel = next(name for name in channels if misrouted(name))
        await layer.send(channel, {"type": "test.message"})
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 2)
        assert _compat.misroutes_process_sends(layer)


async def test_the_head_check_catches_up_every_socket(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repair, "HEAD_CHECK_INTERVAL", 0.05)
    with own_redis_layer(shards=SHARDS):
        sockets: list[Any] = []
        # Until at least one socket is one that channels-redis' send would miss.
        while len(sockets) < 4 or not any(
            misrouted(member.channel_name) for member in repair.feed_for("default").members(GROUP)
        ):
            assert len(sockets) < 64
            sockets.append((await subscribed("async", user))[0])
        seq = await dropped(1)
        for ws in sockets:
            assert (await reply(ws, timeout=30))["data"]["seq"] == seq
        for ws in sockets:
            await ws.disconnect()
