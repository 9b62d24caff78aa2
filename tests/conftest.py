from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import channel_layers
from django.test import override_settings

from rohrpost_signals.core import dispatch
from tests import services

# Runs rohrpost's own test suite from .ci/stages/12-rohrpost-compat.sh only.
collect_ignore = ["compat_rohrpost"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=os.environ.get("RPS_RUN_SLOW") == "1",
        help="also run the slow integration, browser and load tests",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = config.getoption("--run-slow")
    settings_layer = os.environ.get("RPS_LAYER", "redis" if os.environ.get("REDIS_URL") else "")
    problems = []
    if os.environ.get("RPS_DB") == "postgres" and not services.postgres_up():
        problems.append("RPS_DB=postgres but PostgreSQL is not reachable")
    if settings_layer == "redis" and not services.redis_up():
        problems.append(f"RPS_LAYER=redis but Redis is not reachable at {services.REDIS_URL}")
    if problems and services.required():
        raise pytest.UsageError("; ".join(problems) + " (RPS_REQUIRE_SERVICES=1)")
    for item in items:
        if problems:
            item.add_marker(pytest.mark.skip(reason="; ".join(problems)))
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: run with --run-slow"))
        if "redis" in item.keywords and not services.redis_up():
            reason = f"Redis is not reachable at {services.REDIS_URL}"
            if services.required():
                raise pytest.UsageError(reason + " (RPS_REQUIRE_SERVICES=1)")
            item.add_marker(pytest.mark.skip(reason=reason))


def redis_layer_config(prefix: str | None = None, **config: Any) -> dict[str, Any]:
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [services.REDIS_URL],
            "prefix": prefix or f"rps-test-{uuid.uuid4().hex[:8]}",
            **config,
        },
    }


@contextlib.contextmanager
def own_redis_layer(shards: int = 1, **config: Any) -> Iterator[dict[str, Any]]:
    """A channels-redis layer under a prefix of its own; its keys removed after.

    With ``shards`` above 1 its hosts are that many databases of the test
    Redis: channels-redis shards over them as over separate servers.
    """
    services.need_redis()
    urls = [services.REDIS_URL] if shards == 1 else services.redis_databases(shards)
    backend = redis_layer_config(**config)
    backend["CONFIG"]["hosts"] = urls
    try:
        with override_settings(CHANNEL_LAYERS={"default": backend}):
            channel_layers.backends.clear()
            yield backend
    finally:
        channel_layers.backends.clear()
        for url in urls:
            services.delete_redis_keys(url, backend["CONFIG"]["prefix"])


@pytest.fixture
async def user() -> Any:
    """A logged-in superuser for WebSocket tests.

    The default policy refuses anonymous users and asks for the model's
    ``view`` permission, which superusers have for every group a watched
    model produces; tests of the permission rules use ordinary users.
    """
    from channels.db import database_sync_to_async
    from django.contrib.auth.models import User

    return await database_sync_to_async(User.objects.create_superuser)("ada", password="x")


@pytest.fixture
def library_default_policy(settings: Any) -> None:
    """Use rohrpost_signals' own default policy whatever the project configures."""
    settings.ROHRPOST = {
        **settings.ROHRPOST,
        "SUBSCRIBE_POLICY": "rohrpost_signals.policy.default_policy",
    }


MEMORY_LAYER = {"BACKEND": "channels.layers.InMemoryChannelLayer"}


@pytest.fixture
def memory_layer() -> Iterator[None]:
    """The in-memory layer, whatever RPS_LAYER says: for tests that read its tables."""
    with override_settings(CHANNEL_LAYERS={"default": MEMORY_LAYER}):
        channel_layers.backends.clear()
        yield
    channel_layers.backends.clear()


@pytest.fixture(params=["memory", "redis"])
def any_layer(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test once with the in-memory layer and once with Redis."""
    if request.param == "redis":
        services.need_redis()
        config = redis_layer_config()
    else:
        config = MEMORY_LAYER
    with override_settings(CHANNEL_LAYERS={"default": config}):
        channel_layers.backends.clear()
        yield request.param
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fresh_layers() -> Iterator[None]:
    # Layers cache per-loop state; a fresh one per test keeps tests independent.
    channel_layers.backends.clear()
    yield
    dispatch.flush(timeout=5)
    channel_layers.backends.clear()
