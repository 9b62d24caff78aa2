"""Ready-made WebSocket routes: include them in your ``URLRouter``."""

from django.urls import path

from .protocols.jsonrpc.consumers import JsonRpcConsumer
from .protocols.rohrpost.consumers import RohrpostConsumer

#: ``ws/rohrpost/`` served by :class:`~rohrpost_signals.consumers.RohrpostConsumer`.
websocket_urlpatterns = [
    path("ws/rohrpost/", RohrpostConsumer.as_asgi()),
]

#: ``ws/jsonrpc/`` served by :class:`~rohrpost_signals.jsonrpc.JsonRpcConsumer`.
jsonrpc_websocket_urlpatterns = [
    path("ws/jsonrpc/", JsonRpcConsumer.as_asgi()),
]
