"""JSON encoding shared by every outgoing message."""

from __future__ import annotations

import random
from json.encoder import encode_basestring as _encode_string  # what encode() does for a str
from typing import Any

from .jsoncompat import TolerantJSONEncoder

# Tolerant: sets, mappings and collections encode as rohrpost's encoder did.
_encoder = TolerantJSONEncoder(separators=(",", ":"), ensure_ascii=False)

# Browsers read ids as doubles; stay below 2**53 so they round-trip exactly.
_MAX_MESSAGE_ID = 2**53 - 1


def encode(value: Any) -> str:
    """Compact JSON with Django's encoder (dates, decimals, UUIDs, lazy strings)."""
    return _encoder.encode(value)


def new_message_id() -> int:
    # getrandbits is several times cheaper than randint, and runs on every save.
    return random.getrandbits(53) or 1


def subscription_update_text(message_id: int, kind: str, group: str, object_json: str) -> str:
    """The rohrpost ``subscription-update`` frame, splicing in pre-encoded object JSON.

    The object is encoded once per change however many groups receive it.
    """
    head, tail = _update_parts(message_id, kind, group, object_json)
    return head + tail


def subscription_update(
    message_id: int, kind: str, group: str, object_json: str
) -> tuple[str, tuple[str, str]]:
    """The frame without ``seq``, and split for it: what the sender needs, built once."""
    head, tail = _update_parts(message_id, kind, group, object_json)
    return head + tail, (head + '"seq":', "," + tail)


def _update_parts(message_id: int, kind: str, group: str, object_json: str) -> tuple[str, str]:
    return (
        f'{{"id":{message_id},"type":"subscription-update","data":'
        f'{{"type":"{kind}","group":{_encode_string(group)},',
        f'"object":{object_json}}}}}',
    )
