import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from rohrpost_signals.consumers import RohrpostConsumer  # noqa: E402
from rohrpost_signals.jsonrpc import JsonRpcConsumer  # noqa: E402
from shop.consumers import OrderCountConsumer, SyncOrderCountConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        path("ws/rohrpost/", RohrpostConsumer.as_asgi()),
                        path("ws/jsonrpc/", JsonRpcConsumer.as_asgi()),
                        path("ws/order-count/", OrderCountConsumer.as_asgi()),
                        path("ws/order-count-sync/", SyncOrderCountConsumer.as_asgi()),
                    ]
                )
            )
        ),
    }
)
