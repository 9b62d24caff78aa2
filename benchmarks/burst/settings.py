"""Settings of the burst's servers and writer; the layer config comes from the environment.

BURST_LAYER   core-defaults | core-documented | pubsub | memory
BURST_REDIS   comma-separated Redis URLs (several: channels-redis shards over them)
BURST_PREFIX  key prefix, unique per run
BURST_DB      SQLite file shared by the writer and the servers
BURST_LOG_LEVEL  level of the servers' rohrpost_signals log (WARNING; DEBUG to see head checks)
"""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "burst-benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "rohrpost_signals",
    "benchmarks.burst.app",
]
ROOT_URLCONF = "benchmarks.burst.urls"
ASGI_APPLICATION = "benchmarks.burst.asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BURST_DB", "/tmp/rps-burst.sqlite3"),
        "OPTIONS": {"timeout": 60},
    }
}

LAYER = os.environ.get("BURST_LAYER", "memory")
URLS = [u for u in os.environ.get("BURST_REDIS", "redis://127.0.0.1:6379/0").split(",") if u]
PREFIX = os.environ.get("BURST_PREFIX", "rps-burst")


def layer_config(layer: str, urls: list[str], prefix: str) -> dict[str, Any]:
    """The ``CHANNEL_LAYERS["default"]`` of each config the burst measures."""
    if layer == "memory":
        return {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    if layer == "core-defaults":  # as the Channels docs show it
        return {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": urls, "prefix": prefix},
        }
    if layer == "core-documented":  # docs/deployment.rst
        return {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url, "socket_timeout": 30} for url in urls],
                "prefix": prefix,
                "capacity": 10_000,
                "group_expiry": 3600,
            },
        }
    if layer == "pubsub":
        return {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": urls, "prefix": prefix},
        }
    raise ValueError(f"unknown layer config {layer!r}")


CHANNEL_LAYERS = {"default": layer_config(LAYER, URLS, PREFIX)}

ROHRPOST = {
    "MODELS": {
        "burstapp.Item": {"fields": ["name", "counter"], "groups": ["item-{pk}", "items"]},
    },
    "SUBSCRIBE_POLICY": "benchmarks.burst.app.policy.allow_all",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # When and in which worker: a failed run's log is read beside the clients' frames.
    "formatters": {"timed": {"format": "%(asctime)s pid %(process)d %(levelname)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timed"}},
    "loggers": {
        "rohrpost_signals": {
            "handlers": ["console"],
            "level": os.environ.get("BURST_LOG_LEVEL", "WARNING"),
        },
        "django": {"handlers": ["console"], "level": "ERROR"},
    },
}
