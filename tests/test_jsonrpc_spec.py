"""Every example of the JSON-RPC 2.0 specification (section 7), on every transport.

Each frame gets exactly the reply the specification shows: the same result,
error code and id, a reply or none. Error messages may be worded differently
and may carry ``data``; batch replies may come in any order.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.jsonrpc_clients import NO_REPLY, TRANSPORTS, Exchange
from tests.rpc_methods import RECEIVED

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.jsonrpc_urls")]


def _error(code: int, call_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code}, "id": call_id}


def _ok(result: Any, call_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": call_id}


# (name, request text, expected reply or NO_REPLY), in the specification's order.
EXAMPLES: list[tuple[str, str, Any]] = [
    (
        "positional params",
        '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
        _ok(19, 1),
    ),
    (
        "positional params, reversed",
        '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
        _ok(-19, 2),
    ),
    (
        "named params",
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, '
        '"id": 3}',
        _ok(19, 3),
    ),
    (
        "named params, other order",
        '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, '
        '"id": 4}',
        _ok(19, 4),
    ),
    (
        "notification",
        '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}',
        NO_REPLY,
    ),
    ("notification of a missing method", '{"jsonrpc": "2.0", "method": "foobar"}', NO_REPLY),
    (
        "non-existent method",
        '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
        _error(-32601, "1"),
    ),
    (
        "invalid JSON",
        '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
        _error(-32700, None),
    ),
    (
        "invalid Request object",
        '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
        _error(-32600, None),
    ),
    (
        "batch, invalid JSON",
        '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        '{"jsonrpc": "2.0", "method"]',
        _error(-32700, None),
    ),
    ("empty array", "[]", _error(-32600, None)),
    ("invalid batch, not empty", "[1]", [_error(-32600, None)]),
    ("invalid batch", "[1,2,3]", [_error(-32600, None)] * 3),
    (
        "batch",
        """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
        ]""",
        [
            _ok(7, "1"),
            _ok(19, "2"),
            _error(-32600, None),
            _error(-32601, "5"),
            _ok(["hello", 5], "9"),
        ],
    ),
    (
        "batch of notifications only",
        """[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
        ]""",
        NO_REPLY,
    ),
]


def comparable(reply: Any) -> Any:
    """A reply without what may differ: error wording and data, batch order."""
    if reply is NO_REPLY:
        return reply
    if isinstance(reply, list):
        return sorted((comparable(item) for item in reply), key=json.dumps)
    assert isinstance(reply, dict)
    if "error" in reply:
        return {**reply, "error": {"code": reply["error"]["code"]}}
    return reply


def error_messages(reply: Any) -> list[Any]:
    items = reply if isinstance(reply, list) else [reply]
    return [
        item["error"]["message"] for item in items if isinstance(item, dict) and "error" in item
    ]


@pytest.fixture(params=TRANSPORTS)
async def exchange(request: pytest.FixtureRequest) -> AsyncIterator[Exchange]:
    ex = Exchange(request.param)
    yield ex
    await ex.close()


@pytest.mark.parametrize(("name", "text", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
async def test_specification_example(
    exchange: Exchange, name: str, text: str, expected: Any
) -> None:
    got = await exchange(text)
    assert comparable(got) == comparable(expected)
    assert all(isinstance(m, str) and m for m in error_messages(got))
    if isinstance(expected, list):
        assert isinstance(got, list)
        assert len(got) == len(expected)


async def test_notifications_run_though_nothing_answers(exchange: Exchange) -> None:
    RECEIVED.clear()
    await exchange('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}')
    await exchange(
        '[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},'
        '{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]'
    )
    assert RECEIVED == [
        ("update", [1, 2, 3, 4, 5]),
        ("notify_sum", [1, 2, 4]),
        ("notify_hello", [7]),
    ]
