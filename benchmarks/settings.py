"""Django settings for the benchmark processes (never for the test suite).

Environment (set by the harness for each child process):
  BENCH_DB=sqlite|postgres     database; SQLite lives in BENCH_SQLITE_PATH,
                               PostgreSQL in database BENCH_PG_NAME on 127.0.0.1:5432
  BENCH_LAYER=memory|redis     channel layer; Redis at BENCH_REDIS_URL
  BENCH_PREFIX                 Redis key prefix, unique per run (the Redis server is shared)
"""

from __future__ import annotations

import os
import tempfile

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False  # DEBUG=True would keep every SQL query in memory
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "rohrpost_signals",
    "benchmarks.benchapp",
]
ASGI_APPLICATION = "benchmarks.asgi.application"

if os.environ.get("BENCH_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "rps_bench"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get(
                "BENCH_SQLITE_PATH", os.path.join(tempfile.gettempdir(), "rps-bench.sqlite3")
            ),
        }
    }

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("BENCH_PREFIX", "rps-bench")
if os.environ.get("BENCH_LAYER", "memory") == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout and caps a pool at
                # 100 connections by default. channels-redis blocks 5 s in
                # BZPOPMIN while a consumer is idle, so those defaults kill idle
                # consumers ("Timeout reading") and refuse busy servers ("Too
                # many connections"). Same settings for every variant.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 10000}],
                "prefix": PREFIX,
                # The exit check parks every message in one plain channel and
                # reads them afterwards: let it hold them all.
                "channel_capacity": {"bench-exit-*": 1_000_000},
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

ROHRPOST = {
    # The same fields the rohrpost and DCRF variants put in their payloads.
    "MODELS": {"benchapp.SignalsItem": {"fields": ["name", "counter"]}},
    # Benchmark clients are anonymous; the policy is not what is measured.
    "SUBSCRIBE_POLICY": "benchmarks.benchapp.policy.allow_all",
}
if os.environ.get("BENCH_NO_REQUEST_LIMIT") == "1":
    # The round-trip benchmark (benchmarks.jsonrpc) sends thousands of calls
    # per second on one socket: it measures calls, not the rate limit.
    ROHRPOST["MAX_REQUESTS_PER_SECOND"] = 1_000_000
    ROHRPOST["MAX_REQUEST_BURST"] = 1_000_000

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"rohrpost_signals": {"handlers": ["console"], "level": "WARNING"}},
}
