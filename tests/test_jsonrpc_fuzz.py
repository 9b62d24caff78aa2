"""Arbitrary frames never break a JSON-RPC consumer.

Each request gets exactly one reply (a batch one array with one entry per
request in it), a notification none, and the socket stays open.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.jsonrpc_clients import connect, frame

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Registered methods (tests.rpc_methods), built-ins, notification handlers and unknown names.
methods = (
    st.sampled_from(
        [
            "subtract",
            "sum",
            "get_data",
            "ping",
            "subscribe",
            "unsubscribe",
            "update",
            "test.fail",
            "nope",
            "",
        ]
    )
    | json_values
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0"]) | json_values,
        "id": st.integers(-5, 5) | st.text(max_size=5) | json_values,
        "method": methods,
        "params": st.lists(st.integers(-9, 9), max_size=3)
        | st.dictionaries(st.sampled_from(["minuend", "subtrahend", "group", "x"]), json_values)
        | json_values,
    },
)
frames = st.one_of(
    st.text(max_size=60).map(lambda text: ("text", text)),
    json_values.map(lambda value: ("text", json.dumps(value))),
    requests.map(lambda request: ("text", json.dumps(request))),
    st.lists(requests | json_values, max_size=5).map(lambda batch: ("text", json.dumps(batch))),
    st.binary(max_size=30).map(lambda data: ("bytes", data)),
)

FRAMES_PER_EXAMPLE = 50

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),  # anonymous: every subscribe is refused
]


def _is_notification(item: Any) -> bool:
    """A valid call the server must not answer, by the specification's rules."""
    if not isinstance(item, dict) or not isinstance(item.get("method"), str) or not item["method"]:
        return False
    if item.get("params") is not None and not isinstance(item["params"], (list, dict)):
        return False
    if "jsonrpc" in item:
        return item["jsonrpc"] == "2.0" and "id" not in item
    return item.get("id") is None  # JSON-RPC 1.0


def _not_json(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def expected_replies(mode: str, payload: Any) -> int | None:
    """``None``: no reply; ``-1``: one reply object; ``n``: an array of ``n`` replies."""
    if mode == "bytes":
        return -1
    try:
        # JSON as RFC 8259 has it: no NaN or Infinity (Python's json reads them).
        value = json.loads(payload, parse_constant=_not_json, parse_float=_finite)
    except ValueError:
        return -1
    if isinstance(value, list):
        if not value:
            return -1
        answered = sum(not _is_notification(item) for item in value)
        return answered or None
    return None if _is_notification(value) else -1


def _check_reply(reply: Any) -> None:
    assert isinstance(reply, dict)
    assert "id" in reply
    assert ("result" in reply) != ("error" in reply) or reply.get("jsonrpc") is None
    if "error" in reply and reply["error"] is not None:
        assert isinstance(reply["error"]["code"], int)
        assert isinstance(reply["error"]["message"], str)


async def _exchange(batch: list[tuple[str, Any]], kind: str) -> None:
    ws = await connect(kind)
    try:
        for number, (mode, payload) in enumerate(batch):
            await ws.send_input({"type": "websocket.receive", mode: payload})
            probe = f"probe-{number}"
            await ws.send_to(
                text_data=json.dumps({"jsonrpc": "2.0", "method": "ping", "id": probe})
            )
            got = []
            while True:
                value = await frame(ws)
                if isinstance(value, dict) and value.get("id") == probe:
                    assert value["result"] == "pong"
                    break
                got.append(value)
            want = expected_replies(mode, payload)
            if want is None:
                assert got == [], payload
            elif want == -1:
                assert len(got) == 1, (payload, got)
                assert isinstance(got[0], dict), (payload, got)
                _check_reply(got[0])
            else:
                assert len(got) == 1, (payload, got)
                assert isinstance(got[0], list), (payload, got)
                assert len(got[0]) == want, (payload, got)
                for reply in got[0]:
                    _check_reply(reply)
    finally:
        await ws.disconnect()


@settings(
    max_examples=20,  # 20 x 50 = 1,000 frames (and as many pings) to the async consumer
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(frames, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
def test_async_json_rpc_consumer_answers_each_request_once(batch: list[tuple[str, Any]]) -> None:
    async_to_sync(_exchange)(batch, "async")


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(frames, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
def test_sync_json_rpc_consumer_answers_each_request_once(batch: list[tuple[str, Any]]) -> None:
    async_to_sync(_exchange)(batch, "sync")
