"""Ready-made WebSocket routes: include them in your ``URLRouter``."""

from django.urls import path

from .consumers import RohrpostConsumer

#: ``ws/rohrpost/`` served by :class:`~rohrpost_signals.consumers.RohrpostConsumer`.
websocket_urlpatterns = [
    path("ws/rohrpost/", RohrpostConsumer.as_asgi()),
]
