"""WebSocket test plumbing: consumers under a chosen user, without HTTP login."""

from __future__ import annotations

import json
from typing import Any

from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from rohrpost_signals.consumers import RohrpostConsumer, SyncRohrpostConsumer

CONSUMERS = {"async": RohrpostConsumer, "sync": SyncRohrpostConsumer}


class WithUser:
    """ASGI middleware that puts ``user`` into the scope, as AuthMiddleware would."""

    def __init__(self, app: Any, user: Any) -> None:
        self.app = app
        self.user = user

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        return await self.app({**scope, "user": self.user}, receive, send)


async def connect(kind: str = "async", user: Any = None) -> WebsocketCommunicator:
    app = WithUser(CONSUMERS[kind].as_asgi(), user if user is not None else AnonymousUser())
    communicator = WebsocketCommunicator(app, "/ws/rohrpost/")
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def request(communicator: WebsocketCommunicator, **message: Any) -> dict[str, Any]:
    """Send one request and return the one reply."""
    await communicator.send_to(text_data=json.dumps(message))
    return await reply(communicator)


async def reply(communicator: WebsocketCommunicator, timeout: float = 10) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(await communicator.receive_from(timeout=timeout))
    return value


async def assert_alive(communicator: WebsocketCommunicator) -> None:
    """The socket is open and the next good request works."""
    assert await request(communicator, id="alive", type="ping", data=["x"]) == {
        "id": "alive",
        "type": "pong",
        "data": ["x"],
    }
