"""An independent client drives both transports: jsonrpcclient over websockets and httpx.

The server is uvicorn on a real port, in this process, so the test's settings
(URLs, channel layer) apply to it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.test import override_settings
from jsonrpcclient import Error, Ok, notification_json, parse, parse_json, request, request_json

import tests.rpc_methods  # noqa: F401  (registers the methods called here)
from rohrpost_signals.core import dispatch
from rohrpost_signals.routing import jsonrpc_websocket_urlpatterns, websocket_urlpatterns
from shop.models import Product
from tests import services
from tests.conftest import redis_layer_config
from tests.helpers import eventually

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.jsonrpc_urls")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server() -> Iterator[str]:
    sockets = URLRouter([*websocket_urlpatterns, *jsonrpc_websocket_urlpatterns])
    app = ProtocolTypeRouter({"http": get_asgi_application(), "websocket": sockets})
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    eventually(lambda: instance.started, 30)
    yield f"127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=30)


async def test_websocket_with_jsonrpcclient(server: str) -> None:
    async with websockets.connect(f"ws://{server}/ws/jsonrpc/") as ws:

        async def ask(message: dict[str, Any]) -> Any:
            await ws.send(json.dumps(message))
            return parse_json(await ws.recv())

        positional = request("subtract", params=(42, 23))
        assert await ask(positional) == Ok(19, positional["id"])
        named = request("subtract", params={"minuend": 5, "subtrahend": 7})
        assert await ask(named) == Ok(-2, named["id"])
        failing = request("test.custom_error")
        assert await ask(failing) == Error(4001, "Out of stock", {"sku": "A-1"}, failing["id"])
        missing = await ask(request("no.such.method"))
        assert isinstance(missing, Error)
        assert missing.code == -32601

        batch = [request("sum", params=(1, 2, 3)), request("get_data")]
        await ws.send(json.dumps(batch))
        replies = {r.id: r for r in parse_json(await ws.recv())}
        assert replies == {
            batch[0]["id"]: Ok(6, batch[0]["id"]),
            batch[1]["id"]: Ok(["hello", 5], batch[1]["id"]),
        }

        # A notification gets no reply: the next frame answers the next request.
        await ws.send(notification_json("update", params=(1, 2)))
        await ws.send(request_json("ping"))
        assert isinstance(parse_json(await ws.recv()), Ok)


async def test_websocket_pushes_reach_an_independent_client(server: str) -> None:
    async with websockets.connect(f"ws://{server}/ws/jsonrpc/") as ws:
        await ws.send(request_json("test.poke_me"))
        frames = [json.loads(await ws.recv()) for _ in range(2)]
        pushes = [f for f in frames if "method" in f]
        assert pushes == [{"jsonrpc": "2.0", "method": "test.poked", "params": {"by": "server"}}]
        assert next(parse(f) for f in frames if "method" not in f).result == "poked"


async def test_http_with_httpx_and_jsonrpcclient(server: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as client:
        call = request("subtract", params=(42, 23))
        response = await client.post("/rpc/open/", json=call)
        assert response.status_code == 200
        assert parse(response.json()) == Ok(19, call["id"])

        batch = [request("get_data"), request("nope")]
        response = await client.post("/rpc/open/", json=batch)
        by_id = {r.id: r for r in parse(response.json())}
        assert by_id[batch[0]["id"]] == Ok(["hello", 5], batch[0]["id"])
        assert isinstance(by_id[batch[1]["id"]], Error)
        assert by_id[batch[1]["id"]].code == -32601

        notified = await client.post(
            "/rpc/open/",
            content=notification_json("update", (3,)),
            headers={"Content-Type": "application/json"},
        )
        assert notified.status_code == 204
        assert notified.content == b""

        # The CSRF-protected route refuses a client without a token.
        refused = await client.post("/rpc/", json=call)
        assert refused.status_code == 403
        assert (await client.get("/rpc/open/")).status_code == 405


@pytest.fixture
def redis_layer(settings: Any) -> Iterator[None]:
    """Redis, so the test's loop (the sender) and the server's loop share the layer."""
    services.need_redis()
    policy = {**settings.ROHRPOST, "SUBSCRIBE_POLICY": "tests.policies.allow_all"}
    with override_settings(CHANNEL_LAYERS={"default": redis_layer_config()}, ROHRPOST=policy):
        channel_layers.backends.clear()
        yield
    channel_layers.backends.clear()


@pytest.mark.redis
async def test_a_model_change_reaches_both_protocols_through_a_real_server(
    redis_layer: None, server: str
) -> None:
    product = await database_sync_to_async(Product.objects.create)(name="lamp")
    group = f"product-{product.pk}"
    async with (
        websockets.connect(f"ws://{server}/ws/jsonrpc/") as json_rpc,
        websockets.connect(f"ws://{server}/ws/rohrpost/") as classic,
    ):
        subscribe = request("subscribe", params={"group": group})
        await json_rpc.send(json.dumps(subscribe))
        joined = parse_json(await json_rpc.recv())
        assert isinstance(joined, Ok)
        assert joined.result["group"] == group
        await classic.send(json.dumps({"id": 1, "type": "subscribe", "data": {"group": group}}))
        assert json.loads(await classic.recv())["data"]["group"] == group

        product.name = "desk lamp"
        await database_sync_to_async(product.save)()
        await dispatch.aflush()
        notification = json.loads(await asyncio.wait_for(json_rpc.recv(), 30))
        update = json.loads(await asyncio.wait_for(classic.recv(), 30))
    assert notification["method"] == "subscription-update"
    assert notification["params"] == update["data"]
    assert notification["params"]["seq"] == joined.result["seq"] + 1
