"""Every message, in order, once, whatever the channel layer config: the two-worker burst.

Two uvicorn workers and a writer process; raw WebSocket clients without any
repair logic of their own, each subscribed to its own ``item-<pk>`` group and
to the shared ``items`` group; the writer saves as fast as it can. The
in-memory layer only works within one process, so its run has one worker
and the writes happen inside it (an HTTP request starts them). The harness is
``benchmarks/burst``, which also measures the bare-Channels floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.burst.run import Burst, BurstConfig, BurstResult, run_burst
from tests import services

from .cluster import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(600)]

CLIENTS = int(os.environ.get("RPS_BURST_CLIENTS", "300"))
UPDATES = int(os.environ.get("RPS_BURST_UPDATES", "1000"))


def report(result: BurstResult) -> str:
    config = result.config
    return (
        f"burst {config.layer} on {config.server}, {config.clients} clients x "
        f"{config.updates} updates: {result.received:,} of {result.expected:,} frames, "
        f"lost {result.lost}, duplicated {result.duplicated}, out of order "
        f"{result.out_of_order}, resyncs {result.resyncs}, p50 {result.percentile(0.5):,.0f} ms, "
        f"p99 {result.percentile(0.99):,.0f} ms, last frame after {result.drain_s:.1f} s"
    )


def assert_everything_once_in_order(result: BurstResult) -> None:
    problems = "; ".join(result.examples)
    assert result.expected > 0
    assert result.lost == 0, problems
    assert result.duplicated == 0, problems
    assert result.out_of_order == 0, problems
    assert result.resyncs == 0, problems  # the history holds the whole burst
    assert result.received == result.expected


@pytest.mark.parametrize("layer", ["core-defaults", "core-documented", "pubsub", "memory"])
async def test_every_client_gets_every_message_once_in_order(
    layer: str, tmp_path: Path, measured: Callable[[str], None]
) -> None:
    services.need_redis()
    config = BurstConfig(layer, clients=CLIENTS, updates=UPDATES, redis_urls=[services.REDIS_URL])
    result = await run_burst(config, tmp_path)
    measured(report(result))
    assert_everything_once_in_order(result)
    # A blocking read that timed out is an idle period, not an error worth a line.
    assert "Timeout reading" not in result.server_log


async def test_daphne_gets_the_same_guarantee(
    tmp_path: Path, measured: Callable[[str], None]
) -> None:
    services.need_redis()
    config = BurstConfig(
        "core-documented",
        server="daphne",
        clients=CLIENTS,
        updates=UPDATES,
        redis_urls=[services.REDIS_URL],
    )
    result = await run_burst(config, tmp_path)
    measured(report(result))
    assert_everything_once_in_order(result)


@pytest.fixture
def three_redis_servers(tmp_path: Path) -> Iterator[list[RedisServer]]:
    services.need_redis()
    servers = []
    try:
        for n in range(3):
            workdir = tmp_path / f"redis-{n}"
            workdir.mkdir()
            server = RedisServer(workdir)
            server.start()
            servers.append(server)
        yield servers
    finally:
        for server in servers:
            server.stop()


async def test_three_redis_shards(
    three_redis_servers: list[RedisServer], tmp_path: Path, measured: Callable[[str], None]
) -> None:
    urls = [server.url for server in three_redis_servers]
    config = BurstConfig("core-documented", clients=CLIENTS, updates=UPDATES, redis_urls=urls)
    result = await run_burst(config, tmp_path)
    measured(report(result) + " (three Redis shards)")
    assert_everything_once_in_order(result)
    # Groups' histories are spread over the shards the layer uses for them.
    from channels_redis.utils import _consistent_hash

    assert len({_consistent_hash(f"item-{n}", 3) for n in range(1, 50)}) == 3


class SnapshotRedis(RedisServer):
    """A private redis-server that keeps its data in an RDB file across restarts."""

    def restart(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        with contextlib.suppress(redis.ConnectionError):  # it closes the connection as it goes
            client.shutdown(nosave=True)
        assert self.process is not None
        self.process.wait(timeout=30)
        self.process = None
        self.start()  # loads the dump the last SAVE wrote


async def test_a_redis_restored_from_a_snapshot_never_skips_silently(
    tmp_path: Path, measured: Callable[[str], None]
) -> None:
    """SAVE, more writes, SHUTDOWN NOSAVE, restart from the dump, more writes.

    The restored counters are behind what the clients saw. Each client must
    end with every message, or with everything up to the restore, then
    ``resync-required``, then everything after the point it names: no number
    reused silently. (Writes right after the restart may fail to reach the
    layer on stale connections; they are numbered, and the resync covers them.)
    """
    import redis

    services.need_redis()
    server = SnapshotRedis(tmp_path)
    server.start()
    burst = Burst(BurstConfig("core-documented", clients=50, redis_urls=[server.url]), tmp_path)
    try:
        await burst.prepare()
        await burst.write(100)
        redis.Redis.from_url(server.url).save()
        await burst.write(100)
        await burst.delivered()
        before = len(burst.saved)
        server.restart()
        await burst.write(100)
        await burst.delivered()
        # Writes after things settled: where every message a group got after the
        # restore failed on a stale connection, its resync names the head, and
        # only these show that nothing after that point is skipped.
        await burst.write(100)
        await burst.delivered()
        expected = burst.expected()
        resynced = 0
        for client in burst.clients:
            for group in client.groups:
                frames = [counter for g, counter, _t in client.frames if g == group]
                want = expected[group]
                if None not in frames:
                    assert frames == want, (group, frames, want)
                    continue
                resynced += 1
                cut = frames.index(None)
                seen, after = frames[:cut], [c for c in frames[cut + 1 :] if c is not None]
                # Before the resync: what was sent before the restore, in order, nothing skipped.
                assert seen == [c for c in want if c <= before][: len(seen)], (group, frames)
                # After it: everything after the point it names, in order, nothing skipped.
                # (Messages numbered before that point are what the client reloads.)
                written_after = [c for c in want if c > before]
                assert after, (group, frames)
                assert after == written_after[len(written_after) - len(after) :], (group, frames)
        measured(f"snapshot restore: {resynced} client groups were told resync-required")
        assert resynced > 0
    finally:
        await burst.close()
        await asyncio.to_thread(burst.stop)
        server.stop()
