"""Gap repair and epochs reach JSON-RPC sockets: they live in the shared consumer bases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User

from rohrpost_signals.core import history
from rohrpost_signals.core.encoding import subscription_update
from tests.jsonrpc_clients import CONSUMERS, connect, frame, ws_exchange
from tests.test_repair import (  # noqa: F401  (fixtures)
    GROUP,
    dropped,
    head_checks,
    no_head_checks,
    publish,
    send_numbered,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("library_default_policy"),
]

SOCKETS = list(CONSUMERS)


async def subscribed(kind: str, user: User) -> tuple[Any, dict[str, Any]]:
    ws = await connect(kind, user)
    text = json.dumps({"jsonrpc": "2.0", "method": "subscribe", "params": [GROUP], "id": 1})
    await ws.send_to(text_data=text)
    reply = await frame(ws)
    assert "result" in reply, reply
    return ws, reply["result"]


def numbers(received: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(m["method"], m["params"]["seq"]) for m in received]


@pytest.mark.parametrize("kind", SOCKETS)
async def test_a_dropped_message_is_repaired_on_a_json_rpc_socket(
    kind: str,
    any_layer: str,
    user: User,
    no_head_checks: None,  # noqa: F811
) -> None:
    ws, head = await subscribed(kind, user)
    await publish(1)
    await dropped(2)
    await publish(3)
    received = [await frame(ws) for _ in range(3)]
    assert numbers(received) == [("subscription-update", head["seq"] + n) for n in (1, 2, 3)]
    assert [m["params"]["object"]["n"] for m in received] == [1, 2, 3]
    assert "id" not in received[1]
    # Nothing else is waiting: the next frame answers the next call.
    assert (await ws_exchange(ws, '{"jsonrpc":"2.0","method":"ping","id":9}'))["result"] == "pong"
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_a_new_epoch_is_a_resync_required_notification(
    kind: str,
    any_layer: str,
    user: User,
    no_head_checks: None,  # noqa: F811
) -> None:
    ws, head = await subscribed(kind, user)
    _text, (before, after) = subscription_update(9, "update", GROUP, '{"n":9}')
    reused = head["seq"]
    await send_numbered(
        GROUP, reused, "restored", history.seq_text(before, reused, "restored", after)
    )
    resync, live = await frame(ws), await frame(ws)
    assert resync == {
        "jsonrpc": "2.0",
        "method": "resync-required",
        "params": {"group": GROUP, "seq": reused - 1, "epoch": "restored"},
    }
    assert live["method"] == "subscription-update"
    assert (live["params"]["seq"], live["params"]["epoch"]) == (reused, "restored")
    await ws.disconnect()


@pytest.mark.parametrize("kind", SOCKETS)
async def test_a_drop_at_the_end_of_a_burst_reaches_a_json_rpc_socket(
    kind: str,
    any_layer: str,
    user: User,
    head_checks: None,  # noqa: F811
) -> None:
    ws, head = await subscribed(kind, user)
    await publish(1)
    await dropped(2)
    received = [await frame(ws) for _ in range(2)]
    assert numbers(received) == [("subscription-update", head["seq"] + n) for n in (1, 2)]
    await ws.disconnect()
