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

# The limit only stops a hang: a loaded machine may take minutes to deliver a burst.
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(900)]

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
    # What went wrong where, and what the servers logged about it (the result's repr is cut).
    log_tail = [line for line in result.server_log.splitlines() if line.strip()][-30:]
    problems = "; ".join(result.examples) + "\nserver log:\n" + "\n".join(log_tail)
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
        await burst.delivered(lossy=True)  # some of these never reach the restarted Redis
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


def silent_gaps(frames: list[int | None], want: list[int], settled: int) -> str:
    """Where a client's frames of one group skip a message without a resync before it.

    ``None`` is a ``resync-required``: after one, the client reloads, so the
    next message may be any later one (a resync may name a point past what
    was sent meanwhile). Otherwise each message must be the one after the
    last; and everything numbered after ``settled`` must arrive, in order.
    """
    place = {counter: n for n, counter in enumerate(want)}
    last, resynced = -1, False
    for counter in frames:
        if counter is None:
            resynced = True
            continue
        n = place[counter]
        if n <= last or (n != last + 1 and not resynced):
            return f"{want[last] if last >= 0 else 'nothing'} then {counter}"
        last, resynced = n, False
    tail = [c for c in want if c > settled]
    whole = len(frames) >= len(tail) and frames[len(frames) - len(tail) :] == tail
    return "" if whole else "the last round is incomplete"


async def test_keys_deleted_in_batches_while_redis_runs_never_skip_silently(
    tmp_path: Path, measured: Callable[[str], None]
) -> None:
    """A clean-up such as ``redis-cli --scan | xargs -n 500 redis-cli del`` deletes in batches.

    Redis keeps its run_id, so no restart is seen. Here every key of the run
    goes in batches of 50 with writes in between, head keys before the base
    (the order that once made counters start over below what sockets had
    seen, in the same epoch: the next messages were dropped as duplicates).
    A last round of writes, once things settled, must arrive whole: only it
    shows that nothing after a resync's point is skipped.
    """
    import redis

    server = RedisServer(tmp_path)
    server.start()
    burst = Burst(BurstConfig("core-documented", clients=50, redis_urls=[server.url]), tmp_path)
    client = redis.Redis.from_url(server.url)
    try:
        await burst.prepare()
        await burst.write(100)
        await burst.delivered()
        keys = sorted(client.scan_iter(match=f"{burst.prefix}*"), reverse=True)
        assert any(key.endswith(b":rps:base") for key in keys)
        for start in range(0, len(keys), 50):
            client.delete(*keys[start : start + 50])
            await burst.write(10)
        await burst.write(100)
        await burst.delivered(lossy=True)  # a counter lost with its base waits for the next round
        settled = len(burst.saved)
        await burst.write(100)
        await burst.delivered()
        expected = burst.expected()
        problems, resynced = [], 0
        for n, ws in enumerate(burst.clients):
            for group in ws.groups:
                frames = [counter for g, counter, _t in ws.frames if g == group]
                resynced += None in frames
                problem = silent_gaps(frames, expected[group], settled)
                if problem:
                    problems.append(f"client {n} {group}: {problem} in {frames}")
        measured(
            f"keys deleted in batches: {len(keys)} keys, {resynced} client groups were told "
            f"resync-required, {len(problems)} skipped silently"
        )
        assert problems == [], problems[:5]
        assert resynced > 0
    finally:
        client.close()
        await burst.close()
        await asyncio.to_thread(burst.stop)
        server.stop()
