"""Channel layer failures: consumers survive, rejoin their groups, and drops are counted.

The multi-process versions of these (real servers, a Redis that is stopped)
are in tests/integration; these check the same rules in one process, fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from django.contrib.auth.models import User
from django.test import override_settings

from rohrpost_signals import checks
from rohrpost_signals.core import layerlog, membership
from rohrpost_signals.dispatch import stats
from tests import services
from tests.conftest import redis_layer_config
from tests.helpers import aeventually
from tests.ws import assert_alive, connect, request

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


@contextlib.contextmanager
def redis_layer_with(group_expiry: int) -> Iterator[dict[str, Any]]:
    services.need_redis()
    config = redis_layer_config(capacity=1000, group_expiry=group_expiry)
    with override_settings(CHANNEL_LAYERS={"default": config}):
        channel_layers.backends.clear()
        yield config
    channel_layers.backends.clear()
    client = redis.Redis.from_url(services.REDIS_URL)
    for key in client.scan_iter(match=f"{config['CONFIG']['prefix']}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def redis_layer(fast_checks: None) -> Iterator[dict[str, Any]]:
    """A Redis layer whose memberships never need renewing while a test runs.

    Only the keeper's marker check can then restore a lost membership, so a
    test can count its rejoins without racing the periodic renewal.
    """
    with redis_layer_with(group_expiry=3600) as config:
        yield config


@pytest.fixture
def short_expiry_redis_layer(fast_checks: None) -> Iterator[dict[str, Any]]:
    with redis_layer_with(group_expiry=RENEWAL_TEST_EXPIRY) as config:
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
