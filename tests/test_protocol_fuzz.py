"""Arbitrary frames never break a consumer: each gets exactly one reply."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ws import assert_alive, connect

# Strings may hold lone surrogates (valid in decoded JSON, not in UTF-8).
surrogates = st.text(
    alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
    min_size=1,
    max_size=3,
)
strings = st.text(max_size=20) | surrogates
# Numbers a browser cannot hold: NaN, Infinity, ids beyond 2**53.
numbers = (
    st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | strings,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(strings, children, max_size=4)
    ),
    max_leaves=12,
)
types = st.sampled_from(["ping", "subscribe", "unsubscribe", "nope", "", "PING"]) | json_values
requests = st.fixed_dictionaries(
    {},
    optional={"id": json_values, "type": types, "data": json_values, "auth_jwt": json_values},
)


def nest(depth: int, inner: str, open_: str) -> str:
    close = "]" if open_ == "[" else "}"
    opening = "[" if open_ == "[" else '{"a":'
    return opening * depth + inner + close * depth


# Deep nesting: a 2 KB frame nested 1,000 deep once ended the consumer.
deep = st.builds(
    lambda depth, bracket, where: (
        nest(depth, "1", bracket)
        if where == "top"
        else '{"id": 1, "type": "ping", "data": ' + nest(depth, "1", bracket) + "}"
    ),
    st.integers(min_value=1, max_value=1500),
    st.sampled_from(["[", "{"]),
    st.sampled_from(["top", "data"]),
)
frames = st.one_of(
    st.text(max_size=60).map(lambda text: ("text", text)),
    json_values.map(lambda value: ("text", json.dumps(value))),
    requests.map(lambda request: ("text", json.dumps(request))),
    deep.map(lambda text: ("text", text)),
    st.binary(max_size=30).map(lambda data: ("bytes", data)),
)

FRAMES_PER_EXAMPLE = 100

# Consumers close stale connections on each database_sync_to_async call, so
# the tests need database access even though the default policy makes no query.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]


def _not_json(name: str) -> Any:
    raise AssertionError(f"{name} in a reply")


async def _exchange(batch: list[tuple[str, Any]], kind: str) -> None:
    ws = await connect(kind)
    try:
        for mode, payload in batch:
            # send_input, not send_to: empty frames are valid WebSocket frames too.
            await ws.send_input({"type": "websocket.receive", mode: payload})
            raw = await ws.receive_from(timeout=10)
            # What a browser's JSON.parse accepts: ASCII, no NaN or Infinity.
            assert raw.isascii()
            answer = json.loads(raw, parse_constant=_not_json)
            assert isinstance(answer, dict)
            assert answer["id"] is None or isinstance(answer["id"], (int, str))
            assert not isinstance(answer["id"], int) or abs(answer["id"]) < 2**53
            assert "type" in answer
            assert "id" in answer
        # Exactly one reply per frame: nothing else is waiting.
        assert await ws.receive_nothing(timeout=0.05)
        await assert_alive(ws)
    finally:
        await ws.disconnect()


@settings(
    max_examples=20,  # 20 x 100 = 2,000 frames to the async consumer
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(frames, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
def test_async_consumer_answers_every_frame_once(batch: list[tuple[str, Any]]) -> None:
    async_to_sync(_exchange)(batch, "async")


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(frames, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
def test_sync_consumer_answers_every_frame_once(batch: list[tuple[str, Any]]) -> None:
    async_to_sync(_exchange)(batch, "sync")
