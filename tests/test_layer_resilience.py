"""Channel layer failures: consumers survive, rejoin their groups, and drops are counted.

The multi-process versions of these (real servers, a Redis that is stopped)
are in tests/integration; these check the same rules in one process, fast.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import override_settings

from rohrpost_signals import checks
from rohrpost_signals.consumers import RohrpostConsumer, SyncRohrpostConsumer
from rohrpost_signals.core import layerlog, membership
from rohrpost_signals.dispatch import stats
from tests import jsonrpc_clients, services
from tests.conftest import own_redis_layer, redis_layer_config
from tests.helpers import aeventually
from tests.ws import WithUser, assert_alive, connect, request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

EVENT = {"type": "rohrpost.message", "message": '{"id":1,"type":"news"}'}


class FlakyLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """The in-memory layer, with an outage switch that behaves like Redis going away."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.down = False
        self._went_down = asyncio.Event()

    def crash(self, forget: bool = True) -> None:
        """Fail every call from now on; ``forget`` drops memberships (an empty restart)."""
        self.down = True
        self._went_down.set()
        if forget:
            self.groups.clear()

    def recover(self) -> None:
        self.down = False
        self._went_down = asyncio.Event()

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("the layer is down")

    async def receive(self, channel: str) -> dict[str, Any]:
        self._check()
        getter = asyncio.ensure_future(super().receive(channel))
        crashed = asyncio.ensure_future(self._went_down.wait())
        done, _ = await asyncio.wait({getter, crashed}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            crashed.cancel()
            return getter.result()  # type: ignore[no-any-return]
        getter.cancel()
        raise ConnectionError("the layer went down")

    async def group_add(self, group: str, channel: str) -> None:
        self._check()
        await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self._check()
        await super().group_discard(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self._check()
        await super().group_send(group, message)


@pytest.fixture
def fast_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(membership, "CHECK_INTERVAL", 0.02)


@pytest.fixture
def flaky_layer(fast_checks: None) -> Iterator[None]:
    backend = {"BACKEND": f"{__name__}.FlakyLayer"}
    with override_settings(CHANNEL_LAYERS={"default": backend}):
        channel_layers.backends.clear()
        yield
    channel_layers.backends.clear()


def members(layer: Any, group: str) -> set[str]:
    return set(layer.groups.get(group, {}))


CLOSED_1011 = {"type": "websocket.close", "code": 1011}
POISON = {"type": "test.poison"}


class PoisonLayer(FlakyLayer):
    """A message of type ``test.poison`` cannot be decoded, as a corrupt one in channels-redis.

    The error is a bug, not an outage: no connection or timeout error.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.receives: dict[str, int] = {}
        self.broken_discard = False

    async def receive(self, channel: str) -> dict[str, Any]:
        self.receives[channel] = self.receives.get(channel, 0) + 1
        message = await super().receive(channel)
        if message["type"] == POISON["type"]:
            raise ValueError("cannot decode the message")
        return message

    async def group_discard(self, group: str, channel: str) -> None:
        if self.broken_discard:
            raise TypeError("group_discard() got an unexpected keyword argument")
        await super().group_discard(group, channel)


@pytest.fixture
def poison_layer(fast_checks: None) -> Iterator[None]:
    backend = {"BACKEND": f"{__name__}.PoisonLayer"}
    with override_settings(CHANNEL_LAYERS={"default": backend}):
        channel_layers.backends.clear()
        yield
    channel_layers.backends.clear()


async def subscribed_socket(protocol: str, kind: str, user: User) -> WebsocketCommunicator:
    """A socket of ``protocol`` subscribed to ``order-1``."""
    if protocol == "rohrpost":
        ws = await connect(kind, user)
        reply = await request(ws, id=1, type="subscribe", data={"group": "order-1"})
        assert reply["data"]["group"] == "order-1"
        return ws
    ws = await jsonrpc_clients.connect(kind, user)
    text = json.dumps(
        {"jsonrpc": "2.0", "method": "subscribe", "params": {"group": "order-1"}, "id": 1}
    )
    await ws.send_to(text_data=text)
    assert (await jsonrpc_clients.frame(ws))["result"]["group"] == "order-1"
    return ws


def bug_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "rohrpost_signals" and r.levelno == logging.ERROR and r.exc_info
    ]


@pytest.mark.parametrize("protocol", ["rohrpost", "jsonrpc"])
@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_receive_that_raises_a_bug_closes_the_socket_with_1011_once(
    kind: str, protocol: str, user: User, poison_layer: None, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await subscribed_socket(protocol, kind, user)
    layer = get_channel_layer()
    [channel] = members(layer, "order-1")
    errors = stats.layer_errors

    await layer.group_send("order-1", POISON)
    assert await ws.receive_output(timeout=5) == CLOSED_1011
    # Not retried: the receive that raised was the last one.
    assert layer.receives[channel] == 1
    [record] = bug_records(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert "Channel layer receive raised ValueError" in record.getMessage()
    assert stats.layer_errors == errors  # a bug is no outage
    await ws.send_input({"type": "websocket.disconnect", "code": 1011})
    await ws.wait(timeout=5)  # the server's disconnect ends the consumer ...
    assert members(layer, "order-1") == set()  # ... which leaves its groups
    assert layer.receives[channel] == 1


class RefusesServerCodes:
    """ASGI middleware that refuses close codes as daphne's autobahn does (1000, 3000-4999)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        async def send_like_daphne(message: dict[str, Any]) -> None:
            code = message.get("code", 1000)
            if message["type"] == "websocket.close" and code != 1000 and not 3000 <= code <= 4999:
                raise Exception(f"invalid close code {code} (must be 1000 or from [3000, 4999])")
            await send(message)

        return await self.app(scope, receive, send_like_daphne)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_where_the_server_refuses_1011_the_bug_ends_the_consumer(
    kind: str, user: User, poison_layer: None
) -> None:
    """daphne closes with 1011 itself when the application raises."""
    consumer = RohrpostConsumer if kind == "async" else SyncRohrpostConsumer
    ws = WebsocketCommunicator(RefusesServerCodes(WithUser(consumer.as_asgi(), user)), "/")
    assert (await ws.connect(timeout=10))[0]
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    layer = get_channel_layer()
    [channel] = members(layer, "order-1")

    await layer.group_send("order-1", POISON)
    with pytest.raises(ValueError, match="cannot decode"):
        await ws.receive_output(timeout=5)
    assert members(layer, "order-1") == set()  # the crash clean-up left the group
    assert layer.receives[channel] == 1


async def test_a_bug_in_group_discard_is_logged_not_retried_as_an_outage(
    user: User, poison_layer: None, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await connect("async", user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    layer = get_channel_layer()
    layer.broken_discard = True
    errors = stats.layer_errors

    await ws.disconnect()
    [record] = [r for r in caplog.records if "Could not leave group 'order-1'" in r.getMessage()]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], TypeError)
    assert stats.layer_errors == errors + 1
    # The control groups are left through the keeper, which logs the bug and drops them.
    keeper = membership.keeper_for(layer)
    await aeventually(lambda: keeper._discards == [], what="the keeper to drop the discards")
    logged = [r for r in caplog.records if "for a closed socket raised TypeError" in r.getMessage()]
    assert len(logged) == 2
    assert all(r.exc_info for r in logged)
    assert keeper._back.is_set()  # no outage began


class BrokenRejoin(RohrpostConsumer):
    async def rejoin_groups(self) -> int:
        raise RuntimeError("a bug in a subclass")


async def test_a_bug_in_one_sockets_rejoin_closes_that_socket_only(
    user: User, flaky_layer: None, caplog: pytest.LogCaptureFixture
) -> None:
    broken = WebsocketCommunicator(WithUser(BrokenRejoin.as_asgi(), user), "/ws/rohrpost/")
    assert (await broken.connect(timeout=10))[0]
    await request(broken, id=1, type="subscribe", data={"group": "order-1"})
    healthy = await connect("async", user)
    await request(healthy, id=1, type="subscribe", data={"group": "order-1"})
    layer = get_channel_layer()
    errors, rejoins = stats.layer_errors, stats.rejoins

    layer.crash()
    await aeventually(lambda: stats.layer_errors > errors + 1, what="repeated layer failures")
    layer.recover()
    assert await broken.receive_output(timeout=5) == CLOSED_1011
    [record] = bug_records(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "Rejoining a socket's groups raised RuntimeError" in record.getMessage()
    # The other socket rejoined, and the outage ended.
    await aeventually(lambda: stats.rejoins == rejoins + 1, what="the rejoin to be counted")
    assert len(members(layer, "order-1")) == 1
    await layer.group_send("order-1", EVENT)
    assert await healthy.receive_from(timeout=5) == EVENT["message"]
    await assert_alive(healthy)
    await healthy.disconnect()
    await broken.disconnect()


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_an_outage_longer_than_the_bound_closes_the_sockets_with_1011(
    kind: str, user: User, flaky_layer: None, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ROHRPOST = {**settings.ROHRPOST, "LAYER_OUTAGE_TIMEOUT": 0.3}
    sockets = [await connect(kind, user) for _ in range(2)]
    for ws in sockets:
        await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    layer = get_channel_layer()

    layer.crash(forget=False)
    for ws in sockets:
        assert await ws.receive_output(timeout=10) == CLOSED_1011
    # Logged once for the outage, not once per socket.
    [record] = [r for r in caplog.records if "LAYER_OUTAGE_TIMEOUT" in r.getMessage()]
    assert record.levelno == logging.ERROR
    layer.recover()
    for ws in sockets:
        await ws.disconnect()
    await aeventually(lambda: members(layer, "order-1") == set(), what="the groups left")


class HungLayer(FlakyLayer):
    """While ``hung``, every read times out as an idle one would: Redis accepts, never answers."""

    hung = False

    async def receive(self, channel: str) -> dict[str, Any]:
        if self.hung:
            await asyncio.sleep(0.01)  # redis-py's socket_timeout, shortened
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return await super().receive(channel)


async def test_a_hung_layer_whose_reads_look_idle_is_bounded_too(
    user: User, fast_checks: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(membership, "IDLE_READ_SECONDS", 0.0)  # every timeout looks idle
    settings.ROHRPOST = {**settings.ROHRPOST, "LAYER_OUTAGE_TIMEOUT": 0.3}
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": f"{__name__}.HungLayer"}}):
        channel_layers.backends.clear()
        ws = await connect("async", user)
        await request(ws, id=1, type="subscribe", data={"group": "order-1"})
        layer = get_channel_layer()
        layer.hung = True
        layer.crash(forget=False)  # the pending read fails; the keeper's checks keep failing
        assert await ws.receive_output(timeout=10) == CLOSED_1011
        layer.recover()
        await ws.disconnect()
    channel_layers.backends.clear()


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (ConnectionError("the layer is down"), True),
        (TimeoutError(), True),
        (asyncio.TimeoutError(), True),
        (OSError(113, "No route to host"), True),
        (redis.exceptions.ConnectionError("Error 111 connecting"), True),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), True),
        (redis.exceptions.TimeoutError("Timeout reading from socket"), True),
        (redis.exceptions.ResponseError("WRONGTYPE Operation against a key"), False),
        (ValueError("cannot decode the message"), False),
        (TypeError("receive() takes 2 positional arguments"), False),
        (KeyError("type"), False),
    ],
)
def test_only_connection_and_timeout_errors_count_as_an_outage(
    error: Exception, outage: bool
) -> None:
    assert isinstance(error, membership.outage_errors()) is outage


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_layer_outage_keeps_the_socket_and_restores_its_groups(
    kind: str, user: User, flaky_layer: None
) -> None:
    ws = await connect(kind, user)
    reply = await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    assert reply["data"]["group"] == "order-1"
    layer = get_channel_layer()
    [channel] = members(layer, "order-1")
    errors, rejoins = stats.layer_errors, stats.rejoins

    layer.crash()  # Redis restarted empty, say: memberships are gone
    # Two failures: the first receive, and at least one retry (or keeper check).
    await aeventually(lambda: stats.layer_errors > errors + 1, what="repeated layer failures")
    assert members(layer, "order-1") == set()  # nothing can rejoin while it is down

    layer.recover()
    await aeventually(lambda: members(layer, "order-1") == {channel}, what="the group rejoined")
    # The keeper counts the rejoin after it joined every group: wait for it too.
    await aeventually(lambda: stats.rejoins == rejoins + 1, what="the rejoin to be counted")
    await layer.group_send("order-1", EVENT)
    assert await ws.receive_from(timeout=5) == EVENT["message"]
    await assert_alive(ws)
    await ws.disconnect()


async def test_a_socket_closed_during_an_outage_leaves_its_groups_afterwards(
    user: User, flaky_layer: None
) -> None:
    ws = await connect("async", user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    layer = get_channel_layer()
    assert len(members(layer, "order-1")) == 1

    layer.crash(forget=False)  # unreachable, but the memberships survive
    await ws.disconnect()  # its group_discard fails
    assert len(members(layer, "order-1")) == 1

    layer.recover()
    await aeventually(lambda: members(layer, "order-1") == set(), what="the stale membership to go")


@pytest.fixture
def redis_layer(fast_checks: None) -> Iterator[dict[str, Any]]:
    """A Redis layer whose memberships never need renewing while a test runs.

    Only the keeper's marker check can then restore a lost membership, so a
    test can count its rejoins without racing the periodic renewal.
    """
    with own_redis_layer(capacity=1000, group_expiry=3600) as config:
        yield config


@pytest.fixture
def short_expiry_redis_layer(fast_checks: None) -> Iterator[dict[str, Any]]:
    with own_redis_layer(capacity=1000, group_expiry=RENEWAL_TEST_EXPIRY) as config:
        yield config


#: Seconds a membership lives without renewal in the renewal test.
RENEWAL_TEST_EXPIRY = 2


@pytest.mark.redis
async def test_memberships_come_back_after_redis_forgot_them(
    user: User, redis_layer: dict[str, Any]
) -> None:
    """No receive error at all: Redis lost its data between two polls."""
    prefix = redis_layer["CONFIG"]["prefix"]
    client = redis.Redis.from_url(services.REDIS_URL)
    ws = await connect("async", user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    group_key = f"{prefix}:group:order-1"
    await aeventually(lambda: bool(client.keys(f"{prefix}:rps:worker:*")), what="the marker")
    rejoins = stats.rejoins

    client.delete(group_key, *client.keys(f"{prefix}:rps:worker:*"))  # as FLUSHALL would
    await aeventually(lambda: client.exists(group_key) == 1, what="the membership restored")
    # With group_expiry at an hour no renewal runs: only the keeper restored it.
    await aeventually(lambda: stats.rejoins == rejoins + 1, what="the rejoin to be counted")
    await get_channel_layer().group_send("order-1", EVENT)
    assert await ws.receive_from(timeout=5) == EVENT["message"]
    await ws.disconnect()
    client.close()


@pytest.mark.redis
async def test_memberships_are_renewed_before_group_expiry(
    user: User, short_expiry_redis_layer: dict[str, Any]
) -> None:
    prefix = short_expiry_redis_layer["CONFIG"]["prefix"]
    client = redis.Redis.from_url(services.REDIS_URL)
    group_key = f"{prefix}:group:order-1"
    ws = await connect("async", user)
    await request(ws, id=1, type="subscribe", data={"group": "order-1"})
    [(_member, joined_at)] = client.zrange(group_key, 0, -1, withscores=True)
    # Wait until a membership that was never renewed would have expired ...
    await aeventually(
        lambda: time.time() > joined_at + RENEWAL_TEST_EXPIRY + 0.5, what="the expiry to pass"
    )
    # ... and check it was renewed meanwhile: group_send keeps fresh members only.
    [(_member, renewed_at)] = client.zrange(group_key, 0, -1, withscores=True)
    assert renewed_at > joined_at
    client.close()
    await get_channel_layer().group_send("order-1", EVENT)
    assert await ws.receive_from(timeout=5) == EVENT["message"]
    await ws.disconnect()


@pytest.mark.redis
async def test_channels_redis_capacity_drops_are_counted_and_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    services.need_redis()
    config = redis_layer_config(capacity=1)
    with override_settings(CHANNEL_LAYERS={"default": config}):
        channel_layers.backends.clear()
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add("crowded", channel)
        dropped = stats.layer_dropped
        layerlog.drops_log.report()  # start a fresh interval: the next drop is logged at once
        # As the deployment docs' LOGGING recipe sets it: channels-redis at INFO.
        with caplog.at_level(logging.INFO, logger="channels_redis.core"):
            await layer.group_send("crowded", EVENT)  # fills the worker's queue
            await layer.group_send("crowded", EVENT)  # dropped: over capacity
        await layer.flush()
    channel_layers.backends.clear()
    assert stats.layer_dropped == dropped + 1
    # channels-redis's own record is left as it was ...
    [theirs] = [r for r in caplog.records if r.name == "channels_redis.core"]
    assert theirs.levelno == logging.INFO
    assert "over capacity" in theirs.getMessage()
    # ... and this app reports the drop on its own logger.
    [ours] = [r for r in caplog.records if r.name == "rohrpost_signals"]
    assert ours.levelno == logging.WARNING
    assert "'crowded'" in ours.getMessage()
    assert "capacity" in ours.getMessage()


def test_installing_the_drop_counter_leaves_channels_redis_logging_alone() -> None:
    logger = logging.getLogger("channels_redis.core")
    level = logger.level
    layerlog.install()
    layerlog.install()
    assert logger.level == level
    assert sum(isinstance(f, layerlog.CapacityDropCounter) for f in logger.filters) == 1


REDIS_CORE = "channels_redis.core.RedisChannelLayer"


@pytest.mark.parametrize(
    ("layer", "warned"),
    [
        ({"BACKEND": REDIS_CORE, "CONFIG": {}}, ["W001"]),  # capacity 100 by default
        ({"BACKEND": REDIS_CORE, "CONFIG": {"capacity": 10_000}}, []),
        ({"BACKEND": REDIS_CORE, "CONFIG": {"capacity": 10_000, "group_expiry": 30}}, ["W002"]),
        ({"BACKEND": REDIS_CORE, "CONFIG": {"capacity": 50, "group_expiry": 10}}, ["W001", "W002"]),
        ({"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {}}, []),
        ({"BACKEND": "channels.layers.InMemoryChannelLayer"}, []),
    ],
)
def test_risky_redis_layer_settings_are_warned_about(
    layer: dict[str, Any], warned: list[str]
) -> None:
    with override_settings(CHANNEL_LAYERS={"default": layer}):
        found = checks.check_layer_settings()
    assert [m.id for m in found] == [f"rohrpost_signals.{id}" for id in warned]
    assert all(m.hint for m in found)
