"""The re-check benchmark's server: the library's consumer behind the session middleware."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.recheck_settings")
django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from rohrpost_signals.consumers import RohrpostConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {"websocket": AuthMiddlewareStack(URLRouter([path("ws/", RohrpostConsumer.as_asgi())]))}
)
