"""The burst server: the library's consumer, the floor's, and (in-memory) the writer."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.burst.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.urls import path

django_app = get_asgi_application()

from rohrpost_signals.consumers import RohrpostConsumer  # noqa: E402

from .app.consumers import FloorConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": URLRouter(
            [
                path("ws/rohrpost/", RohrpostConsumer.as_asgi()),
                path("ws/floor/", FloorConsumer.as_asgi()),
            ]
        ),
    }
)
