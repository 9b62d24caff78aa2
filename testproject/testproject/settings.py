"""Settings for the demo and the test suite.

Environment:
  RPS_DB=sqlite|postgres   database (default sqlite; postgres uses 127.0.0.1:5432/test)
  RPS_LAYER=memory|redis   channel layer (default: redis when REDIS_URL is set)
  REDIS_URL                Redis for the redis layer (default redis://127.0.0.1:6379/0)
  RPS_REDIS_CONFIG=defaults   the redis layer with channels-redis' defaults (no tuning)
  RPS_HISTORY_MAX_MESSAGES, RPS_HISTORY_MAX_AGE   override ROHRPOST's resume history limits
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-testproject-key-only-for-local-use")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rohrpost_signals",
    "shop",
    "board",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

try:  # token-authenticated sockets (rohrpost_signals.tokens); an optional dependency
    import rest_framework  # noqa: F401
except ImportError:
    pass
else:
    INSTALLED_APPS.append("rest_framework.authtoken")

ROOT_URLCONF = "testproject.urls"
ASGI_APPLICATION = "testproject.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("RPS_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "test"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": os.environ.get("RPS_PG_TEST_DB", "test_rohrpost_signals")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("RPS_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "TEST": {"NAME": os.environ.get("RPS_SQLITE_TEST_PATH") or None},
        }
    }

REDIS_URL = os.environ.get("REDIS_URL", "")
_layer = os.environ.get("RPS_LAYER", "redis" if REDIS_URL else "memory")
if _layer == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels-redis waits up to 5 s for a message; redis-py 8's
                # default socket_timeout of 5 s would end that wait with an error.
                "hosts": [
                    {"address": REDIS_URL or "redis://127.0.0.1:6379/0", "socket_timeout": 30}
                ],
                "prefix": os.environ.get("RPS_REDIS_PREFIX", "rohrpost-signals"),
                # channels-redis drops group messages for a channel holding
                # `capacity` unread ones; its default of 100 is too small.
                "capacity": int(os.environ.get("RPS_REDIS_CAPACITY") or "1000"),
            },
        }
    }
    if os.environ.get("RPS_REDIS_CONFIG") == "defaults":
        # The Channels docs' config: channels-redis and redis-py defaults throughout.
        CHANNEL_LAYERS["default"]["CONFIG"] = {
            "hosts": [REDIS_URL or "redis://127.0.0.1:6379/0"],
            "prefix": os.environ.get("RPS_REDIS_PREFIX", "rohrpost-signals"),
        }
    # Integration tests vary the layer's expiries (channels-redis defaults otherwise).
    for _option in ("expiry", "group_expiry"):
        if os.environ.get(f"RPS_REDIS_{_option.upper()}"):
            CHANNEL_LAYERS["default"]["CONFIG"][_option] = int(
                os.environ[f"RPS_REDIS_{_option.upper()}"]
            )
    if os.environ.get("RPS_REDIS_RETRY") == "1":
        # A pooled connection is stale after Redis restarted: retry once on a fresh one.
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["retry"] = Retry(NoBackoff(), 1)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

ROHRPOST = {
    "MODELS": {
        "shop.Order": {
            "fields": ["status", "total", "customer"],
            "exclude": ["secret"],
            "groups": ["order-{pk}", "customer-{customer_id}-orders"],
        },
        "shop.Product": {},
        # The demo (testproject/board): one group per card and one per board's
        # card list, so a page showing a board also sees cards being created.
        "board.Board": {"fields": ["name"], "groups": ["board-{pk}"]},
        "board.Card": {
            "fields": ["board", "title", "status", "assignee"],
            "groups": ["card-{pk}", "board-{board_id}-cards"],
            "serializer": "board.realtime.card_data",
        },
    },
    # Board members only; every other group goes to the library's default policy.
    "SUBSCRIBE_POLICY": "board.realtime.can_subscribe",
}
# Integration tests shrink the resume history and the budgets (the library's defaults otherwise).
for _option in (
    "HISTORY_MAX_MESSAGES",
    "HISTORY_MAX_AGE",
    "HISTORY_MAX_BYTES",
    "MAX_REPLAY_BYTES_PER_MINUTE",
    "MAX_OUTGOING_BYTES",
    "MAX_REQUESTS_PER_SECOND",
    "MAX_REQUEST_BURST",
    "SUBSCRIBE_TIMEOUT",
):
    if os.environ.get(f"RPS_{_option}"):
        ROHRPOST[_option] = int(os.environ[f"RPS_{_option}"])

# daphne's runserver (the demo) refuses frames over twice MAX_MESSAGE_BYTES
# before buffering them, as docs/deployment.rst recommends.
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = 2 * 65536
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = 2 * 65536

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "rohrpost_signals": {"handlers": ["console"], "level": "INFO"},
        # Its "over capacity" records are how rohrpost_signals counts channels-redis drops.
        "channels_redis.core": {"handlers": ["console"], "level": "INFO"},
    },
}
