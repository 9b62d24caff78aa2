"""How a group event's rohrpost text becomes the JSON-RPC notification a socket gets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rohrpost_signals.core.encoding import subscription_update_text
from rohrpost_signals.message import build_text
from rohrpost_signals.protocols.jsonrpc.frames import from_group_text


def test_a_model_update_is_spliced_not_re_encoded() -> None:
    # Key order and spacing that json.dumps would not produce survive: the
    # data part is copied as it is.
    text = subscription_update_text(42, "update", "order-5", '{"b": 1,  "a":[2]}')
    data = text[text.index('"data":') + len('"data":') : -1]
    assert from_group_text(text) == (
        f'{{"jsonrpc":"2.0","method":"subscription-update","params":{data}}}'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            build_text("resync-required", data={"group": "g", "seq": 3}),
            {"jsonrpc": "2.0", "method": "resync-required", "params": {"group": "g", "seq": 3}},
        ),
        (
            build_text("shop.opened", data=[1, "x"]),
            {"jsonrpc": "2.0", "method": "shop.opened", "params": [1, "x"]},
        ),
        (build_text("bare"), {"jsonrpc": "2.0", "method": "bare"}),
        (
            build_text("oops", error="bad", data=1),
            {"jsonrpc": "2.0", "method": "oops", "params": {"data": 1, "error": "bad"}},
        ),
        ("[1, 2]", {"jsonrpc": "2.0", "method": "message", "params": [1, 2]}),
        ("not json", {"jsonrpc": "2.0", "method": "message", "params": "not json"}),
    ],
)
def test_other_group_messages_become_notifications(text: str, expected: dict[str, Any]) -> None:
    assert json.loads(from_group_text(text)) == expected
