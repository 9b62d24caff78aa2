"""JSON-RPC behaviour beyond the specification's examples, on every transport."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.test import AsyncClient, override_settings

from rohrpost_signals.exceptions import HandlerAlreadyRegistered
from rohrpost_signals.jsonrpc import JsonRpcConsumer, rpc_method, rpc_notification
from rohrpost_signals.testing import capture_notifications
from tests.jsonrpc_clients import NO_REPLY, TRANSPORTS, Exchange, connect, frame, ws_exchange
from tests.ws import WithUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.jsonrpc_urls")]

SOCKETS = ["async", "sync"]


def call(method: str, params: Any = None, call_id: Any = 1, version: str | None = "2.0") -> str:
    message: dict[str, Any] = {"method": method, "id": call_id}
    if version is not None:
        message["jsonrpc"] = version
    if params is not None:
        message["params"] = params
    return json.dumps(message)


@pytest.fixture(params=TRANSPORTS)
async def exchange(request: pytest.FixtureRequest) -> AsyncIterator[Exchange]:
    ex = Exchange(request.param)
    yield ex
    await ex.close()


async def test_json_rpc_1_0_requests_are_answered_the_1_0_way(exchange: Exchange) -> None:
    assert await exchange(call("subtract", [5, 3], call_id=7, version=None)) == {
        "result": 2,
        "error": None,
        "id": 7,
    }
    failed = await exchange(call("foobar", [], call_id="x", version=None))
    assert failed["result"] is None
    assert failed["id"] == "x"
    assert "jsonrpc" not in failed
    assert failed["error"]["code"] == -32601
    # In 1.0 a notification is a request whose id is null.
    assert await exchange(call("update", [1], call_id=None, version=None)) is NO_REPLY


@pytest.mark.parametrize(
    "params",
    [[1], [1, 2, 3], {"minuend": 1}, {"minuend": 1, "subtrahend": 2, "extra": 3}, {"context": 1}],
)
async def test_params_that_do_not_fit_are_invalid_params(exchange: Exchange, params: Any) -> None:
    reply = await exchange(call("subtract", params))
    assert reply["error"]["code"] == -32602
    assert reply["id"] == 1


async def test_context_is_not_a_parameter_a_client_may_pass(exchange: Exchange) -> None:
    reply = await exchange(call("test.whoami", {"context": "forged"}))
    assert reply["error"]["code"] == -32602


async def test_a_method_exception_is_a_server_error_with_its_message(
    exchange: Exchange, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="rohrpost_signals.jsonrpc"):
        reply = await exchange(call("test.fail", ["out of paper"]))
    assert reply["error"] == {"code": -32000, "message": "out of paper"}
    assert "Traceback" not in json.dumps(reply)
    assert any(r.exc_info and "out of paper" in str(r.exc_info[1]) for r in caplog.records)


async def test_rpc_error_chooses_code_message_and_data(exchange: Exchange) -> None:
    reply = await exchange(call("test.custom_error"))
    assert reply["error"] == {"code": 4001, "message": "Out of stock", "data": {"sku": "A-1"}}


async def test_results_are_encoded_with_djangos_encoder(exchange: Exchange) -> None:
    assert (await exchange(call("test.price")))["result"] == "12.50"


async def test_a_result_json_cannot_encode_is_an_internal_error(
    exchange: Exchange, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="rohrpost_signals.jsonrpc"):
        reply = await exchange(call("test.unencodable", call_id="u"))
    assert reply["error"]["code"] == -32603
    assert reply["id"] == "u"
    assert "Traceback" not in json.dumps(reply)
    assert caplog.records


async def test_a_failing_notification_gets_no_reply(exchange: Exchange) -> None:
    assert await exchange('{"jsonrpc": "2.0", "method": "test.fail"}') is NO_REPLY
    assert await exchange('{"jsonrpc": "2.0", "method": "missing", "params": [1]}') is NO_REPLY


async def test_notification_handlers_are_not_methods(exchange: Exchange) -> None:
    assert (await exchange(call("update", [1])))["error"]["code"] == -32601


async def test_methods_limited_to_one_transport(exchange: Exchange) -> None:
    socket_reply = await exchange(call("test.socket_only"))
    http_reply = await exchange(call("test.http_only"))
    if exchange.transport == "http":
        assert socket_reply["error"]["code"] == -32601
        assert http_reply["result"] == "http"
        # Subscriptions need a socket; ping does not.
        assert (await exchange(call("subscribe", {"group": "x"})))["error"]["code"] == -32601
        assert (await exchange(call("unsubscribe", ["x"])))["error"]["code"] == -32601
        assert (await exchange(call("ping")))["result"] == "pong"
    else:
        assert socket_reply["result"] == "socket"
        assert http_reply["error"]["code"] == -32601


@pytest.mark.parametrize("kind", SOCKETS)
async def test_context_on_the_websocket(kind: str, user: User) -> None:
    ws = await connect(kind, user)
    reply = await ws_exchange(ws, call("test.whoami", call_id="w"))
    assert reply["result"] == {
        "transport": "websocket",
        "user": "ada",
        "has_scope": True,
        "has_request": False,
        "has_consumer": True,
        "method": "test.whoami",
        "id": "w",
    }
    await ws.disconnect()


async def test_context_over_http_has_the_request_and_its_user(user: User) -> None:
    client = AsyncClient()
    # AsyncClient.aforce_login() is Django 5.0+; 4.2 has the sync one only.
    await database_sync_to_async(client.force_login)(user)
    response = await client.post("/rpc/", call("test.whoami"), content_type="application/json")
    assert json.loads(response.content)["result"] == {
        "transport": "http",
        "user": "ada",
        "has_scope": False,
        "has_request": True,
        "has_consumer": False,
        "method": "test.whoami",
        "id": 1,
    }


async def test_http_follows_djangos_csrf_rules_unless_exempted() -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    refused = await client.post("/rpc/", call("get_data"), content_type="application/json")
    assert refused.status_code == 403
    allowed = await client.post("/rpc/open/", call("get_data"), content_type="application/json")
    assert allowed.status_code == 200
    assert json.loads(allowed.content)["result"] == ["hello", 5]


@pytest.mark.parametrize("method", ["get", "put", "delete", "options"])
async def test_http_answers_only_post(method: str) -> None:
    response = await getattr(AsyncClient(), method)("/rpc/")
    assert response.status_code == 405


async def test_http_wants_json() -> None:
    response = await AsyncClient().post("/rpc/", call("get_data"), content_type="text/plain")
    assert response.status_code == 415


async def test_http_bodies_over_the_size_limit_are_refused() -> None:
    with override_settings(ROHRPOST={"MAX_MESSAGE_BYTES": 100}):
        response = await AsyncClient().post(
            "/rpc/", call("sum", list(range(100))), content_type="application/json"
        )
    assert response.status_code == 413
    assert json.loads(response.content)["error"]["data"]["reason"] == "too-large"


async def test_http_bodies_that_are_not_utf8_are_parse_errors() -> None:
    response = await AsyncClient().post("/rpc/", b"\xff\xfe", content_type="application/json")
    assert json.loads(response.content)["error"]["code"] == -32700


@pytest.mark.parametrize("kind", SOCKETS)
@pytest.mark.parametrize(
    ("send", "code", "reason"),
    [
        ({"bytes_data": b"\x00"}, -32700, "binary-frame"),
        ({"text_data": "[" * 5000 + "]" * 5000}, -32700, "bad-json"),
        ({"text_data": '"x' + "y" * 200 + '"'}, -32600, "too-large"),
    ],
)
async def test_bad_frames_get_one_error_and_the_socket_stays_open(
    kind: str, send: dict[str, Any], code: int, reason: str
) -> None:
    with override_settings(ROHRPOST={"MAX_MESSAGE_BYTES": 20_000 if "[" in str(send) else 100}):
        ws = await connect(kind)
        await ws.send_to(**send)
        reply = await frame(ws)
    assert reply["error"]["code"] == code
    assert reply["id"] is None
    assert reply["error"]["data"]["reason"] == reason
    assert (await ws_exchange(ws, call("get_data")))["result"] == ["hello", 5]
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_ping_answers_pong(kind: str) -> None:
    ws = await connect(kind)
    assert await ws_exchange(ws, call("ping", call_id=9)) == {
        "jsonrpc": "2.0",
        "result": "pong",
        "id": 9,
    }
    await ws.disconnect()


async def test_a_consumer_may_choose_its_json_encoder() -> None:
    class Plain(DjangoJSONEncoder):
        def default(self, o: Any) -> Any:
            return f"<{type(o).__name__}>"

    class PlainConsumer(JsonRpcConsumer):
        json_encoder_class = Plain

    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import AnonymousUser

    ws = WebsocketCommunicator(WithUser(PlainConsumer.as_asgi(), AnonymousUser()), "/ws/")
    assert (await ws.connect(timeout=10))[0]
    assert (await ws_exchange(ws, call("test.unencodable")))["result"] == "<object>"
    await ws.disconnect()


def test_registering_a_name_twice_raises() -> None:
    def first() -> None: ...

    def second() -> None: ...

    rpc_method("test.twice")(first)
    rpc_method("test.twice")(first)  # the same function again (a re-import) is fine
    with pytest.raises(HandlerAlreadyRegistered):
        rpc_method("test.twice")(second)
    with pytest.raises(HandlerAlreadyRegistered):
        rpc_notification("test.twice")(second)
    with pytest.raises(HandlerAlreadyRegistered):
        rpc_method("subscribe")(second)


@pytest.mark.parametrize("kind", SOCKETS)
async def test_notify_group_and_channel_reach_sockets(kind: str, user: User) -> None:
    ws = await connect(kind, user)
    reply = await ws_exchange(ws, call("subscribe", {"group": "announcements"}))
    assert reply["result"]["group"] == "announcements"
    await ws.send_to(text_data=call("test.broadcast", ["announcements", {"n": 1}]))
    got = [await frame(ws), await frame(ws)]
    assert {"jsonrpc": "2.0", "method": "test.news", "params": {"n": 1}} in got
    assert {"jsonrpc": "2.0", "result": True, "id": 1} in got
    await ws.send_to(text_data=call("test.poke_me", call_id="p"))
    got = [await frame(ws), await frame(ws)]
    assert {"jsonrpc": "2.0", "method": "test.poked", "params": {"by": "server"}} in got
    assert {"jsonrpc": "2.0", "result": "poked", "id": "p"} in got
    await ws.disconnect()


async def test_capture_notifications_sees_json_rpc_pushes() -> None:
    from rohrpost_signals.jsonrpc import notify_group

    with capture_notifications() as captured:
        notify_group("announcements", "shop.opened", {"at": "9:00"})
    assert [(n.group, n.method, n.params) for n in captured] == [
        ("announcements", "shop.opened", {"at": "9:00"})
    ]


async def test_capture_notifications_sees_channel_pushes() -> None:
    from rohrpost_signals.jsonrpc import anotify_channel

    with capture_notifications() as captured:
        await anotify_channel("specific.abc!def", "you.only", [1])
    assert [(n.group, n.method, n.params) for n in captured] == [
        ("specific.abc!def", "you.only", [1])
    ]


@pytest.mark.parametrize("kind", SOCKETS)
@pytest.mark.usefixtures("library_default_policy")
async def test_subscribe_refusals_carry_a_stable_reason(kind: str) -> None:
    ws = await connect(kind)  # anonymous: the default policy refuses
    reply = await ws_exchange(ws, call("subscribe", {"group": "order-5"}, call_id="s"))
    assert reply["id"] == "s"
    assert reply["error"]["data"]["reason"] in ("forbidden", "unauthenticated")
    assert -32099 <= reply["error"]["code"] <= -32001
    bad = await ws_exchange(ws, call("subscribe", {"group": "has space"}))
    assert bad["error"]["code"] == -32602
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_the_subscription_limit_applies(kind: str, user: User, settings: Any) -> None:
    with override_settings(ROHRPOST={**settings.ROHRPOST, "MAX_SUBSCRIPTIONS": 1}):
        ws = await connect(kind, user)
        first = await ws_exchange(ws, call("subscribe", ["announcements"]))
        assert first["result"]["group"] == "announcements"
        second = await ws_exchange(ws, call("subscribe", ["product-1"]))
        assert second["error"]["data"]["reason"] == "too-many-subscriptions"
        unsubscribed = await ws_exchange(ws, call("unsubscribe", {"group": "announcements"}))
        assert unsubscribed["result"] == {"group": "announcements"}
        third = await ws_exchange(ws, call("subscribe", ["product-1"]))
        assert third["result"]["group"] == "product-1"
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_the_request_rate_limit_counts_each_call_of_a_batch(kind: str, settings: Any) -> None:
    limited = {**settings.ROHRPOST, "MAX_REQUESTS_PER_SECOND": 0.001, "MAX_REQUEST_BURST": 3}
    with override_settings(ROHRPOST=limited):
        ws = await connect(kind)
        await ws.send_to(
            text_data=json.dumps([json.loads(call("get_data", call_id=n)) for n in range(5)])
        )
        replies = sorted(await frame(ws), key=lambda r: r["id"])
    assert [r.get("result") for r in replies[:3]] == [["hello", 5]] * 3
    for reply in replies[3:]:
        assert reply["error"]["code"] == -32005
        assert reply["error"]["data"]["reason"] == "rate-limited"
    await ws.disconnect()


@pytest.mark.parametrize("bad_id", [{"a": 1}, [1], True, "x" * 129, 2**60])
async def test_ids_that_cannot_be_echoed_safely_are_invalid_requests(
    exchange: Exchange, bad_id: Any
) -> None:
    reply = await exchange(call("get_data", call_id=bad_id))
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600
    assert reply["error"]["data"]["reason"] == "bad-id"
