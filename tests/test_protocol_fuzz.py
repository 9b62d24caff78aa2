"""Arbitrary frames never break a consumer: each gets exactly one reply."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ws import assert_alive, connect

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
types = st.sampled_from(["ping", "subscribe", "unsubscribe", "nope", "", "PING"]) | json_values
requests = st.fixed_dictionaries(
    {},
    optional={"id": json_values, "type": types, "data": json_values, "auth_jwt": json_values},
)
frames = st.one_of(
    st.text(max_size=60).map(lambda text: ("text", text)),
    json_values.map(lambda value: ("text", json.dumps(value))),
    requests.map(lambda request: ("text", json.dumps(request))),
    st.binary(max_size=30).map(lambda data: ("bytes", data)),
)

FRAMES_PER_EXAMPLE = 100

# Consumers close stale connections on each database_sync_to_async call, so
# the tests need database access even though the default policy makes no query.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]


async def _exchange(batch: list[tuple[str, Any]], kind: str) -> None:
    ws = await connect(kind)
    try:
        for mode, payload in batch:
            # send_input, not send_to: empty frames are valid WebSocket frames too.
            await ws.send_input({"type": "websocket.receive", mode: payload})
            answer = json.loads(await ws.receive_from(timeout=10))
            assert isinstance(answer, dict)
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
