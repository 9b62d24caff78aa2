"""Upgrading in place: the keys earlier versions left in Redis.

The previous release (2026-11-25) kept each group's counter in a string key,
``<prefix>:rps:seq:<group>``, and its history in the stream the current
version uses too. Builds of main from the morning of 2026-12-01 also kept the
shard's base, ``<prefix>:rps:base``, as a string, where the current version
keeps a hash. Such keys expire a day after the group's last message; until
then sending and subscribing must work, and no client may resume from the old
numbers without being told to resync.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.contrib.auth.models import User
from django.test import override_settings

from rohrpost_signals.conf import conf
from rohrpost_signals.core import dispatch, history
from shop.models import Product
from tests import services
from tests.conftest import redis_layer_config
from tests.ws import CONSUMERS, connect, reply, request

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

# The previous release's numbering script, verbatim (history.py at 38e2c28).
OLD_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[3]) end
local seq = string.format('%.0f', redis.call('INCR', KEYS[1]))
local text = ARGV[1] .. seq .. ARGV[2]
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 's', seq, 't', text)
redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', oldest))
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return seq
"""

OLD_TTL = 600 + 86400  # its HISTORY_MAX_AGE default plus a day


def origin(shift_ms: int = 0) -> int:
    """A counter origin as the old version took it from its host's clock."""
    return (int(time.time() * 1000) + shift_ms) * 1000


@pytest.fixture
def redis_layer() -> Iterator[str]:
    """A Redis layer under a prefix of this test's own; yields the prefix."""
    services.need_redis()
    config = redis_layer_config(prefix=f"rps-test-history-{uuid.uuid4().hex[:8]}")
    with override_settings(CHANNEL_LAYERS={"default": config}):
        channel_layers.backends.clear()
        yield config["CONFIG"]["prefix"]
    channel_layers.backends.clear()


@pytest.fixture
async def client(redis_layer: str) -> AsyncIterator[Any]:
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(services.REDIS_URL, decode_responses=True)
    yield client
    keys = await client.keys(f"{redis_layer}:*")
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def old_send(client: Any, prefix: str, group: str, origin: int) -> int:
    """One message numbered by a process that still runs the previous release."""
    keys = [f"{prefix}:rps:seq:{group}", f"{prefix}:rps:hist:{group}"]
    argv = ['{"data":{"seq":', "}}", origin, 1000, 600_000, OLD_TTL]
    return int(await client.eval(OLD_APPEND, 2, *keys, *argv))


async def subscribe(ws: Any, data: dict[str, Any], id: int = 1) -> dict[str, Any]:
    answer = await request(ws, id=id, type="subscribe", data=data)
    assert "error" not in answer, answer
    return dict(answer["data"])


async def rename(product: Product, name: str) -> None:
    product.name = name
    await database_sync_to_async(product.save)()
    await dispatch.aflush()


@pytest.mark.parametrize("kind", list(CONSUMERS))
async def test_a_group_the_previous_release_numbered(
    kind: str, redis_layer: str, client: Any, user: User
) -> None:
    old_product = await database_sync_to_async(Product.objects.create)(name="lamp")
    other_product = await database_sync_to_async(Product.objects.create)(name="desk")
    group, other_group = f"product-{old_product.pk}", f"product-{other_product.pk}"
    await dispatch.aflush()
    await client.delete(*await client.keys(f"{redis_layer}:*"))  # created before the upgrade
    # The old version numbered three messages the day before the upgrade.
    for _ in range(3):
        old_last = await old_send(client, redis_layer, group, origin(-86_400_000))
    legacy = f"{redis_layer}:rps:seq:{group}"
    assert await client.type(legacy) == "string"
    assert await client.ttl(legacy) > 0

    ws = await connect(kind, user)
    head = await subscribe(ws, {"group": group})
    assert head["seq"] > old_last
    other_ws = await connect(kind, user)
    other_head = await subscribe(other_ws, {"group": other_group})

    # Sending to the group works and is delivered, numbered above the old counter.
    await rename(old_product, "after the upgrade")
    live = (await reply(ws))["data"]
    assert live["group"] == group
    assert live["seq"] == head["seq"] + 1 > old_last + 1
    assert live["epoch"] == head["epoch"]
    assert await client.exists(legacy) == 0  # taken over by the new head

    # A client of the old version resumes from its last number (it had no epoch).
    resumed = await connect(kind, user)
    answer = await subscribe(resumed, {"group": group, "since": old_last})
    assert answer == {"group": group, "seq": live["seq"], "epoch": live["epoch"]}
    resync = await reply(resumed)
    assert resync["type"] == "resync-required"
    assert resync["data"] == answer
    assert await resumed.receive_nothing(timeout=0.2)

    # A group the old version never numbered is not affected.
    await rename(other_product, "moved")
    other_live = (await reply(other_ws))["data"]
    assert other_live["seq"] == other_head["seq"] + 1
    since = {"group": other_group, "since": other_head["seq"], "epoch": other_head["epoch"]}
    await subscribe(resumed, since, id=2)
    assert (await reply(resumed))["data"] == other_live
    for socket in (ws, other_ws, resumed):
        await socket.disconnect()


async def test_numbers_stay_above_an_old_counter_that_ran_ahead_of_the_clock(
    redis_layer: str, client: Any
) -> None:
    # Counters start from the sending host's clock: one that ran an hour fast
    # left a counter above what this host's clock gives.
    store = history.store_for(conf.CHANNEL_LAYER)
    old_last = await old_send(client, redis_layer, "order-1", origin(3_600_000))
    assert await store.heads(["order-1"]) == {}  # nothing numbered in the new format yet
    before = await store.replay("order-1", None)
    assert before.last_seq == old_last + 1
    assert (await store.replay("order-1", old_last)).resync

    seq, epoch, _text = await store.append("order-1", '{"seq":', "}")
    assert seq == old_last + 2  # no number of the old counter is handed out again
    assert epoch == before.epoch
    after = await store.replay("order-1", old_last)
    assert (after.resync, after.last_seq) == (True, seq)
    assert await store.heads(["order-1"]) == {"order-1": history.Head(seq, epoch)}


async def test_a_base_kept_as_a_string_starts_a_new_epoch(redis_layer: str, client: Any) -> None:
    store = history.store_for(conf.CHANNEL_LAYER)
    first, old_epoch, _text = await store.append("order-1", '{"seq":', "}")
    # What builds of main from the morning of 2026-12-01 wrote: the base and
    # each counter as strings, the counter starting at the base.
    base, ahead = f"{redis_layer}:rps:base", origin(3_600_000)
    await client.delete(base, f"{redis_layer}:rps:head:order-2")
    await client.set(base, ahead, ex=OLD_TTL)
    await client.set(f"{redis_layer}:rps:seq:order-2", ahead)
    assert await client.incr(f"{redis_layer}:rps:seq:order-2") == ahead + 1

    seq, epoch, _text = await store.append("order-2", '{"seq":', "}")
    assert epoch != old_epoch  # the old base is a lost history
    assert seq == ahead + 3
    assert await client.type(base) == "hash"
    assert (await store.replay("order-2", ahead + 1)).resync
    fresh = await store.replay("order-3", None)
    assert (fresh.last_seq, fresh.epoch) == (ahead, epoch)
    # A group numbered in the new format before goes on as it was.
    heads = await store.heads(["order-1", "order-2"])
    assert heads == {"order-1": history.Head(first, old_epoch), "order-2": history.Head(seq, epoch)}


async def test_an_old_process_writing_into_the_history_means_resync(
    redis_layer: str, client: Any
) -> None:
    # A rolling restart: a process of the previous release adds an entry of
    # its own numbering to the stream the new version keeps.
    store = history.store_for(conf.CHANNEL_LAYER)
    one, _epoch, _text = await store.append("order-1", '{"seq":', "}")
    await store.append("order-1", '{"seq":', "}")
    await old_send(client, redis_layer, "order-1", origin())
    three, _epoch, text = await store.append("order-1", '{"seq":', "}")
    assert three == one + 2
    assert (await store.replay("order-1", one)).resync
    assert (await store.replay("order-1", one + 1)).texts == (text,)
