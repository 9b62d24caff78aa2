"""Settings of the periodic re-check benchmark (``benchmarks/recheck.py``).

The test project's ``shop`` app, sessions and the library's default policy:
every socket logs in with a session cookie and follows ``product-<pk>`` groups,
which the policy checks with the product's ``view`` permission.

Environment: ``RECHECK_DB`` (SQLite file), ``RECHECK_INTERVAL``
(``REAUTHORIZE_INTERVAL``), ``BENCH_REDIS_URL``, ``BENCH_PREFIX``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "testproject"))

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "channels",
    "rohrpost_signals",
    "shop",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["RECHECK_DB"]}}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                    "socket_timeout": 30,
                    "max_connections": 10000,
                }
            ],
            "prefix": os.environ.get("BENCH_PREFIX", "rps-recheck"),
            "capacity": 10000,
        },
    }
}
ROHRPOST = {
    "MODELS": {"shop.Product": {"fields": ["name"]}},
    "REAUTHORIZE_INTERVAL": float(os.environ.get("RECHECK_INTERVAL", "60")),
    "MAX_REQUESTS_PER_SECOND": 1000,
    "MAX_REQUEST_BURST": 1000,
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"rohrpost_signals": {"handlers": ["console"], "level": "WARNING"}},
}
