"""Hostile clients against real servers: no frame ends a socket, no client grows the process.

Each attack of issue 13 against uvicorn and daphne, with the in-memory layer
and with Redis: every hostile frame gets its error reply and the same socket
still answers a ping; a healthy client on the same worker receives every
update, in order, while the attack runs; and the worker's memory (VmRSS from
``/proc/<pid>/status``) stays within the bound each test states, where main
grew by 33.7 MB (30,000 group names), 182 MB (400 replays to a client that
never reads, daphne) and 3.1 MB per 2,000 messages (300 crashed sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import aeventually

from .clients import Client, SilentClient, close_all, post_status, start_all, wait_until
from .cluster import RedisServer, Worker, Writer
from .conftest import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

MAX_MESSAGE_BYTES = 65536  # the library's default, which the workers use
SUBSCRIBE_TIMEOUT = "2"


# --- helpers --------------------------------------------------------------------------


class Socket:
    """One client connection driven request by request, reading every reply."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, port: int, cookie: str) -> Socket:
        ws = await connect(
            f"ws://127.0.0.1:{port}/ws/rohrpost/",
            origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie},
            compression=None,
            proxy=None,
            max_size=None,
            open_timeout=30,
        )
        return cls(ws)

    async def send(self, frame: str) -> dict[str, Any]:
        """Send a frame, return the one reply (ASCII JSON, as a browser needs)."""
        await self.ws.send(frame)
        raw = await asyncio.wait_for(self.ws.recv(), 30)
        assert isinstance(raw, str)
        assert raw.isascii(), raw[:200]
        value: dict[str, Any] = json.loads(raw, parse_constant=_not_json)
        return value

    async def subscribe(self, group: str, since: int | None = None, id: int = 1) -> dict[str, Any]:
        data: dict[str, Any] = {"group": group}
        if since is not None:
            data["since"] = since
        return await self.send(json.dumps({"id": id, "type": "subscribe", "data": data}))

    async def ping(self) -> None:
        assert await self.send('{"id": "p", "type": "ping", "data": [1]}') == {
            "id": "p",
            "type": "pong",
            "data": [1],
        }

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


def _not_json(name: str) -> Any:
    raise AssertionError(f"{name} in a reply")


class Feed:
    """Writes one order's status through the worker's web view at a steady pace.

    The save happens in the worker, so it reaches its sockets on either layer.
    """

    def __init__(self, port: int, cookie: str, pk: int) -> None:
        self.port, self.cookie, self.pk = port, cookie, pk
        self.values: list[str] = []
        self._stop = False
        self._task: asyncio.Future[None] | None = None

    def _run(self) -> None:
        n = 0
        while not self._stop:
            value = f"feed-{n}"
            assert post_status(self.port, self.cookie, self.pk, value) == 200
            self.values.append(value)
            n += 1
            time.sleep(0.05)

    def start(self) -> None:
        self._task = asyncio.ensure_future(asyncio.to_thread(self._run))

    def halt(self) -> None:
        """Stop without waiting (a failing test must not leave the thread posting)."""
        self._stop = True

    async def stop(self, at_least: int = 20) -> None:
        """Stop once ``at_least`` values are written (the attack may have been quick)."""
        await wait_until(lambda: len(self.values) >= at_least, 60, "the feed's writes")
        self._stop = True
        assert self._task is not None
        await self._task

    async def check(self, healthy: Client) -> None:
        """The healthy client got every value, once, in order."""
        group = f"order-{self.pk}"
        assert len(self.values) >= 5, "the feed wrote too little to show anything"
        await wait_until(
            lambda: len(healthy.values(group)) >= len(self.values), 30, "the healthy client"
        )
        assert healthy.values(group) == self.values
        assert healthy.closes == 0


async def setup_cluster(
    cluster: Cluster, server: str, layer: str, **env: str
) -> tuple[Worker, Writer, str, list[int]]:
    worker = cluster.worker(server, RPS_LAYER=layer, RPS_SUBSCRIBE_TIMEOUT=SUBSCRIBE_TIMEOUT, **env)
    writer = cluster.writer()
    setup = await asyncio.to_thread(writer.call, op="setup", orders=4)
    return worker, writer, f"sessionid={setup['session']}", setup["orders"]


async def healthy_client(port: int, cookie: str, pk: int) -> Client:
    client = Client("healthy", port, cookie, [f"order-{pk}"])
    await start_all([client])
    return client


def rss_mib(worker: Worker) -> float:
    return worker.rss_kib() / 1024


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# (frame, reply id, reply code); None as the code: a normal reply.
HOSTILE_FRAMES: list[tuple[str, Any, str | None]] = [
    (nested(960), None, "bad-json"),
    ('{"id": 1, "type": "ping", "data": ' + nested(3000) + "}", None, "bad-json"),
    (
        '{"id": 2, "type": "ping", "data": ' + '{"a":' * 500 + "1" + "}" * 500 + "}",
        None,
        "bad-json",
    ),
    ('{"id": "\\ud800", "type": "ping"}', "\ud800", None),
    ('{"id": 3, "type": "\\udfff"}', 3, "unknown-type"),
    ('{"id": 4, "type": "ping", "data": ["\\ud800", {"\\udbff": "x\\udc00"}]}', 4, None),
    ('{"id": 5, "type": "subscribe", "data": {"group": "\\ud800"}}', 5, "bad-request"),
    ('{"id": 6, "type": "subscribe", "data": "order-\\ud800"}', 6, "bad-request"),
    ('{"id": 7, "type": "ping", "auth_jwt": "\\ud800"}', 7, None),
    ('{"id": NaN, "type": "ping"}', None, "bad-json"),
    ('{"id": Infinity, "type": "ping"}', None, "bad-json"),
    ('{"id": -Infinity, "type": "ping"}', None, "bad-json"),
    ('{"id": 1e400, "type": "ping"}', None, "bad-json"),
    ('{"id": 8, "type": "ping", "data": [NaN]}', None, "bad-json"),
    ('{"id": 18446744073709551616, "type": "ping"}', None, "bad-id"),
    ('{"id": -9007199254740992, "type": "ping"}', None, "bad-id"),
    ('{"id": 1.5, "type": "ping"}', None, "bad-id"),
    ('{"id": "' + "i" * 129 + '", "type": "ping"}', None, "bad-id"),
    ('{"id": 9, "type": "ping", "data": ' + "9" * 5000 + "}", None, "bad-json"),
    (
        '{"id": 10, "type": "subscribe", "data": {"group": "order-1", "since": 1e400}}',
        None,
        "bad-json",
    ),
]


def sized_ping(total: int) -> str:
    """A ping frame of exactly ``total`` bytes."""
    empty = '{"id": 11, "type": "ping", "data": ""}'
    return empty[:-2] + "x" * (total - len(empty)) + '"}'


COMBINATIONS = [
    ("uvicorn", "memory"),
    ("daphne", "memory"),
    ("uvicorn", "redis"),
    ("daphne", "redis"),
]


# --- the attacks ------------------------------------------------------------------------


@pytest.mark.parametrize(("server", "layer"), COMBINATIONS)
async def test_hostile_frames_and_frame_sizes(
    shared_redis_cluster: Cluster, server: str, layer: str, measured: Callable[[str], None]
) -> None:
    worker, _writer, cookie, orders = await setup_cluster(shared_redis_cluster, server, layer)
    healthy = await healthy_client(worker.port, cookie, orders[0])
    feed = Feed(worker.port, cookie, orders[0])
    feed.start()
    attacker = await Socket.open(worker.port, cookie)
    try:
        for frame, reply_id, code in HOSTILE_FRAMES:
            answer = await attacker.send(frame)
            assert answer["id"] == reply_id, (frame[:60], answer)
            assert answer.get("code") == code, (frame[:60], answer)
            await attacker.ping()
        # Frames around the library's limit: under it works, over it is an error reply.
        assert (await attacker.send(sized_ping(MAX_MESSAGE_BYTES)))["type"] == "pong"
        over = await attacker.send(sized_ping(MAX_MESSAGE_BYTES + 1))
        assert over["code"] == "too-large"
        assert over["id"] is None
        await attacker.ping()
        twice = await attacker.send(sized_ping(2 * MAX_MESSAGE_BYTES - 100))
        assert twice["code"] == "too-large"
        await attacker.ping()
        # 10 MB: the server cuts it off (1009) before buffering it; the worker does not grow.
        before = rss_mib(worker)
        with pytest.raises(ConnectionClosed) as closed:
            await attacker.send(sized_ping(10 * 1024 * 1024))
        if server == "uvicorn":
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009
        # daphne (autobahn) drops the connection, and closing a socket with unread
        # data makes the kernel reset it: the client sees no close frame.
        grown = rss_mib(worker) - before
        assert grown < 8, f"a 10 MB frame grew {server} by {grown:.1f} MiB"
        again = await Socket.open(worker.port, cookie)
        await again.ping()
        await again.close()
        await feed.stop()
        await feed.check(healthy)
        assert worker.alive()
        assert "Traceback" not in worker.log()
        measured(
            f"hostile frames on {server}+{layer}: {len(HOSTILE_FRAMES)} kinds answered, socket "
            f"alive; 10 MB frame refused by the server, RSS +{grown:.1f} MiB; healthy client got "
            f"all {len(feed.values)} updates"
        )
    finally:
        feed.halt()
        await attacker.close()
        await close_all([healthy])


CHURN = 30_000
CHURN_SOCKETS = 10
CHURN_BOUND_MIB = 12  # main grew by 33.7 MB in memory


async def churn(port: int, cookie: str, names: list[str], batch: int = 50) -> None:
    """Subscribe to and unsubscribe from every name, ``batch`` names in flight at a time."""
    socket = await Socket.open(port, cookie)
    for start in range(0, len(names), batch):
        chunk = names[start : start + batch]
        for name in chunk:
            await socket.ws.send(json.dumps({"id": 1, "type": "subscribe", "data": name}))
            await socket.ws.send(json.dumps({"id": 2, "type": "unsubscribe", "data": name}))
        for _ in range(2 * len(chunk)):
            message = json.loads(await asyncio.wait_for(socket.ws.recv(), 60))
            assert message.get("code") in (None, "forbidden", "unknown-group"), message
    await socket.ping()
    await socket.close()


async def churn_on(port: int, cookie: str, names: list[str]) -> None:
    """``names`` spread over CHURN_SOCKETS sockets at once."""
    per_socket = len(names) // CHURN_SOCKETS
    await asyncio.gather(
        *(
            churn(port, cookie, names[i * per_socket : (i + 1) * per_socket])
            for i in range(CHURN_SOCKETS)
        )
    )


@pytest.mark.parametrize(("server", "layer"), [("uvicorn", "memory"), ("daphne", "redis")])
@pytest.mark.timeout(900)  # 35,000 subscribes: a hang guard for a busy machine
async def test_group_name_churn_leaves_nothing_behind(
    shared_redis_cluster: Cluster, server: str, layer: str, measured: Callable[[str], None]
) -> None:
    cluster = shared_redis_cluster
    # The request budget is raised: this test is about memory, not the rate limit.
    worker, _writer, cookie, orders = await setup_cluster(
        cluster, server, layer, RPS_MAX_REQUESTS_PER_SECOND="100000", RPS_MAX_REQUEST_BURST="100000"
    )
    healthy = await healthy_client(worker.port, cookie, orders[0])
    feed = Feed(worker.port, cookie, orders[0])
    try:
        base = 10**9 + os.getpid() * 10**5
        # The same load with other names first: the server's buffers reach their size.
        await churn_on(worker.port, cookie, [f"product-{base - n - 1}" for n in range(5000)])
        before = rss_mib(worker)
        feed.start()
        await churn_on(worker.port, cookie, [f"product-{base + n}" for n in range(CHURN)])
        grown = rss_mib(worker) - before
        await feed.stop()
        await feed.check(healthy)
        assert grown < CHURN_BOUND_MIB, f"{CHURN} group names grew {server} by {grown:.1f} MiB"
        if layer == "redis":
            keys = await redis_keys(cluster, "rps:seq:product-*") + await redis_keys(
                cluster, "rps:hist:product-*"
            )
            assert keys == [], keys[:5]
        measured(
            f"group-name churn on {server}+{layer}: {CHURN:,} names subscribed and left, "
            f"RSS +{grown:.1f} MiB (bound {CHURN_BOUND_MIB}), no history keys"
        )
    finally:
        feed.halt()
        await close_all([healthy])


async def redis_keys(cluster: Cluster, pattern: str) -> list[str]:
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(cluster.redis_url)
    try:
        return [k.decode() for k in await client.keys(f"{cluster.prefix}:{pattern}")]
    finally:
        await client.aclose()


REPLAYS = 400
HISTORY = 1000
REPLAY_BOUND_MIB = 30  # main grew daphne by 182 MB


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
async def test_replays_to_a_client_that_never_reads(
    shared_redis_cluster: Cluster, server: str, measured: Callable[[str], None]
) -> None:
    worker, writer, cookie, orders = await setup_cluster(shared_redis_cluster, server, "redis")
    target = orders[1]
    writes = [("order", target, f"h{n}") for n in range(HISTORY)]
    await asyncio.to_thread(writer.save, writes)
    await asyncio.to_thread(writer.flush)
    healthy = await healthy_client(worker.port, cookie, orders[0])
    probe = await Socket.open(worker.port, cookie)
    head = (await probe.subscribe(f"order-{target}"))["data"]["seq"]
    replay = json.dumps(
        {
            "id": 2,
            "type": "subscribe",
            "data": {"group": f"order-{target}", "since": head - HISTORY + 1},
        }
    )
    feed = Feed(worker.port, cookie, orders[0])
    silent = SilentClient(worker.port, cookie, [])
    try:
        before = rss_mib(worker)
        feed.start()
        for _ in range(REPLAYS):
            # A fresh subscription each time, or the server would not replay again.
            await asyncio.to_thread(
                silent.send, json.dumps({"id": 3, "type": "unsubscribe", "data": f"order-{target}"})
            )
            await asyncio.to_thread(silent.send, replay)
        # Let the worker do what it was asked, then measure.
        await probe.ping()
        await asyncio.sleep(0)
        await feed.stop()
        await feed.check(healthy)
        grown = rss_mib(worker) - before
        assert grown < REPLAY_BOUND_MIB, f"{REPLAYS} replays grew {server} by {grown:.1f} MiB"
        await probe.ping()
        measured(
            f"non-reader on {server}: {REPLAYS} replays of {HISTORY} messages asked, RSS "
            f"+{grown:.1f} MiB (bound {REPLAY_BOUND_MIB}); healthy client got all "
            f"{len(feed.values)} updates"
        )
    finally:
        feed.halt()
        silent.close()
        await probe.close()
        await close_all([healthy])


CRASHERS = 300
CRASH_MESSAGES = 2000
CRASH_BOUND_MIB = 15


@pytest.mark.parametrize(("server", "layer"), [("daphne", "redis"), ("uvicorn", "memory")])
async def test_crash_frames_leave_no_zombie_members(
    shared_redis_cluster: Cluster, server: str, layer: str, measured: Callable[[str], None]
) -> None:
    cluster = shared_redis_cluster
    worker, writer, cookie, orders = await setup_cluster(cluster, server, layer)
    healthy = await healthy_client(worker.port, cookie, orders[0])
    groups = [f"order-{pk}" for pk in orders[1:]]
    crash_frames = [
        nested(960),
        '{"id": "\\ud800", "type": "ping"}',
        '{"id": 1, "type": "\\ud800"}',
    ]
    try:
        before = rss_mib(worker)
        for n in range(CRASHERS):
            socket = await Socket.open(worker.port, cookie)
            for group in groups:
                assert "error" not in await socket.send(
                    json.dumps({"id": 1, "type": "subscribe", "data": group})
                )
            assert await socket.send(crash_frames[n % 3])  # one reply, whatever it says
            await socket.ping()
            await socket.close()
        if layer == "redis":
            # The last socket's disconnect clean-up may still be running: wait for it.
            async def sizes() -> list[int]:
                return [await group_size(cluster, group) for group in groups]

            async def no_members() -> bool:
                return await sizes() == [0] * len(groups)

            await aeventually(no_members, timeout=30, what="no members left in the groups")
        # Messages to the groups the crashers were in: nobody queues them any more.
        feed_writes = [("order", orders[1 + n % 3], f"m{n}") for n in range(CRASH_MESSAGES)]
        if layer == "redis":
            await asyncio.to_thread(writer.save, feed_writes)
            await asyncio.to_thread(writer.flush)
        else:
            for _model, pk, value in feed_writes[:300]:  # web saves are slower
                assert await asyncio.to_thread(post_status, worker.port, cookie, pk, value) == 200
        final = f"final-{time.time_ns() % 10**9}"
        assert await asyncio.to_thread(post_status, worker.port, cookie, orders[0], final) == 200
        await wait_until(lambda: final in healthy.values(f"order-{orders[0]}"), 30, "healthy")
        grown = rss_mib(worker) - before
        assert grown < CRASH_BOUND_MIB, f"{CRASHERS} crash attempts grew {server} by {grown:.1f}"
        assert worker.alive()
        measured(
            f"crash frames on {server}+{layer}: {CRASHERS} sockets, no zombie members, "
            f"RSS +{grown:.1f} MiB (bound {CRASH_BOUND_MIB}) after the messages"
        )
    finally:
        await close_all([healthy])


async def group_size(cluster: Cluster, group: str) -> int:
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(cluster.redis_url)
    try:
        return int(await client.zcard(f"{cluster.prefix}:group:{group}"))
    finally:
        await client.aclose()


@contextlib.contextmanager
def stopped(redis: RedisServer) -> Iterator[None]:
    """SIGSTOP the private redis-server: it holds every connection and answers nothing."""
    assert redis.process is not None
    redis.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        redis.process.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
async def test_hung_and_down_redis_answers_subscribe_with_an_error(
    private_cluster: Cluster,
    private_redis: RedisServer,
    server: str,
    measured: Callable[[str], None],
) -> None:
    worker, _writer, cookie, orders = await setup_cluster(
        private_cluster, server, "redis", DJANGO_DEBUG=os.environ.get("HOSTILE_DEBUG", "0")
    )
    healthy = await healthy_client(worker.port, cookie, orders[0])
    socket = await Socket.open(worker.port, cookie)
    try:
        with stopped(private_redis):
            started = time.monotonic()
            answer = await socket.send(
                json.dumps({"id": 1, "type": "subscribe", "data": f"order-{orders[1]}"})
            )
            waited = time.monotonic() - started
            hung_code = answer["code"]
            assert hung_code in ("timeout", "unavailable"), answer
            assert answer["id"] == 1
            await socket.ping()
        # Redis answers again: the same socket subscribes, the healthy one still gets updates.
        answer = await socket.send(
            json.dumps({"id": 2, "type": "subscribe", "data": f"order-{orders[1]}"})
        )
        assert "error" not in answer, answer
        value = f"back-{time.time_ns() % 10**9}"
        assert await asyncio.to_thread(post_status, worker.port, cookie, orders[0], value) == 200
        await wait_until(lambda: value in healthy.values(f"order-{orders[0]}"), 60, "an update")

        private_redis.stop()
        try:
            answer = await socket.send(
                json.dumps({"id": 3, "type": "subscribe", "data": f"order-{orders[2]}"})
            )
            assert answer["code"] in ("timeout", "unavailable"), answer
            await socket.ping()
        finally:
            private_redis.start()
        assert worker.alive()
        measured(
            f"hung Redis on {server}: subscribe answered '{hung_code}' after {waited:.1f} s "
            f"(SUBSCRIBE_TIMEOUT {SUBSCRIBE_TIMEOUT} s), socket kept; Redis down: "
            f"'{answer['code']}'"
        )
    finally:
        await socket.close()
        await close_all([healthy])
