"""One way to send a JSON-RPC frame and get its reply, for each transport under test."""

from __future__ import annotations

import itertools
import json
from typing import Any

from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

import tests.rpc_methods  # noqa: F401  (registers the methods the tests call)
from rohrpost_signals.jsonrpc import JsonRpcConsumer, SyncJsonRpcConsumer
from tests.ws import WithUser

CONSUMERS = {"async": JsonRpcConsumer, "sync": SyncJsonRpcConsumer}
TRANSPORTS = ["async", "sync", "http"]
NO_REPLY = object()

_probes = itertools.count(1)


async def connect(kind: str = "async", user: Any = None) -> WebsocketCommunicator:
    from django.contrib.auth.models import AnonymousUser

    app = WithUser(CONSUMERS[kind].as_asgi(), user if user is not None else AnonymousUser())
    communicator = WebsocketCommunicator(app, "/ws/jsonrpc/")
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def frame(communicator: WebsocketCommunicator, timeout: float = 10) -> Any:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def ws_exchange(communicator: WebsocketCommunicator, text: str) -> Any:
    """Send ``text``; its reply, or ``NO_REPLY`` when the server sent none.

    A ping follows the frame: whatever arrives before the pong is the reply,
    so "no reply" is proved without waiting for a timeout.
    """
    await communicator.send_to(text_data=text)
    probe = f"probe-{next(_probes)}"
    await communicator.send_to(
        text_data=json.dumps({"jsonrpc": "2.0", "method": "ping", "id": probe})
    )
    before = []
    while True:
        value = await frame(communicator)
        if isinstance(value, dict) and value.get("id") == probe:
            assert value == {"jsonrpc": "2.0", "result": "pong", "id": probe}
            break
        before.append(value)
    assert len(before) <= 1, f"more than one reply to one frame: {before}"
    return before[0] if before else NO_REPLY


async def http_exchange(text: str | bytes, path: str = "/rpc/", **extra: Any) -> Any:
    response = await AsyncClient().post(path, data=text, content_type="application/json", **extra)
    if response.status_code == 204:
        assert response.content == b""
        return NO_REPLY
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


class Exchange:
    """Frames in, replies out, over one transport (a socket is opened on first use)."""

    def __init__(self, transport: str, user: Any = None) -> None:
        self.transport = transport
        self.user = user
        self.socket: WebsocketCommunicator | None = None

    async def __call__(self, text: str) -> Any:
        if self.transport == "http":
            return await http_exchange(text)
        if self.socket is None:
            self.socket = await connect(self.transport, self.user)
        return await ws_exchange(self.socket, text)

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.disconnect()
