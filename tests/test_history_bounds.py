"""The history creates nothing on a read, and the memory history has a byte bound."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.test import override_settings

from rohrpost_signals.core.history import (
    ENTRY_OVERHEAD,
    GROUP_OVERHEAD,
    MemoryHistory,
    RedisHistory,
)
from tests import services


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def append(store: MemoryHistory | RedisHistory, group: str, n: int = 1) -> int:
    seq = 0
    for _ in range(n):
        seq, _epoch, _text = await store.append(group, '{"seq":', "}")
    return seq


def test_memory_reads_create_nothing_and_the_first_message_follows_the_head() -> None:
    async def scenario() -> None:
        store = MemoryHistory()
        heads = {(await store.replay(f"product-{n}", None)).last_seq for n in range(1000)}
        assert len(heads) == 1  # every unknown group reads as the base
        assert store.size == 0
        assert not store._groups
        [head] = heads
        # A subscriber that saw head gets the first message as head + 1: no gap.
        assert await append(store, "product-7") == head + 1
        assert (await store.replay("product-8", head + 3)).resync

    run(scenario())


def test_memory_history_is_bounded_oldest_group_first() -> None:
    async def scenario() -> None:
        text_size = len('{"seq":1,"epoch":""}') + 15 + 12  # 16-digit seqs, 12-character epochs
        per_group = GROUP_OVERHEAD + 2 * (text_size + ENTRY_OVERHEAD)
        with override_settings(ROHRPOST={"HISTORY_MAX_BYTES": 10 * per_group}):
            store = MemoryHistory()
            lasts = {}
            for n in range(50):
                lasts[n] = await append(store, f"g-{n}", 2)
                assert store.size <= 10 * per_group
            assert list(store._groups) == [f"g-{n}" for n in range(40, 50)]
            # A recently sent group is kept; sending to an old one moves it to the back.
            await append(store, "g-40")
            await append(store, "g-50", 2)
            assert "g-40" in store._groups
            assert "g-41" not in store._groups
            # A forgotten group starts over above its old numbers: resuming means resync.
            replay = await store.replay("g-0", lasts[0])
            assert replay.resync
            assert await append(store, "g-0") > lasts[0]

    run(scenario())


@pytest.mark.redis
def test_redis_reads_create_no_keys() -> None:
    services.need_redis()
    prefix = f"rps-test-{uuid.uuid4().hex[:8]}"
    host, port = services.redis_address()
    url = f"redis://{host}:{port}/0"

    async def scenario() -> None:
        from redis import asyncio as aioredis

        store = RedisHistory([url], prefix)
        client = aioredis.Redis.from_url(url)
        try:
            heads = set()
            for n in range(200):
                heads.add((await store.replay(f"product-{n}", None)).last_seq)
                await store.replay(f"order-{n}", 12345)
            keys = sorted(k.decode() for k in await client.keys(f"{prefix}:*"))
            assert keys == [f"{prefix}:rps:base"]  # one key per shard, not per group
            [head] = heads
            assert await append(store, "product-3") == head + 1
            assert (await store.replay("product-3", head)).texts
            assert len(await client.keys(f"{prefix}:rps:head:*")) == 1
        finally:
            keys = await client.keys(f"{prefix}:*")
            if keys:
                await client.delete(*keys)
            await client.aclose()

    run(scenario())
