"""The benchmark ASGI server: one route per variant, run under uvicorn."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402
from rohrpost.sync_consumer import SyncRohrpostConsumer  # noqa: E402

import benchmarks.benchapp.rpc  # noqa: E402, F401  (the round-trip benchmark's echo handlers)
from benchmarks.benchapp.consumers import BareConsumer, DcrfItemConsumer  # noqa: E402
from rohrpost_signals.consumers import RohrpostConsumer  # noqa: E402
from rohrpost_signals.jsonrpc import JsonRpcConsumer  # noqa: E402

ROUTES = {
    "floor": "ws/bare/",
    "signals": "ws/signals/",
    "rohrpost": "ws/rohrpost/",
    "dcrf": "ws/dcrf/",
    "jsonrpc": "ws/jsonrpc/",
}

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path(ROUTES["floor"], BareConsumer.as_asgi()),
                path(ROUTES["signals"], RohrpostConsumer.as_asgi()),
                path(ROUTES["rohrpost"], SyncRohrpostConsumer.as_asgi()),
                path(ROUTES["dcrf"], DcrfItemConsumer.as_asgi()),
                path(ROUTES["jsonrpc"], JsonRpcConsumer.as_asgi()),
            ]
        )
    }
)
