"""JSON encoding shared by every outgoing message."""

from __future__ import annotations

import json
import math
import random
from json.encoder import encode_basestring_ascii as _encode_string  # what encode() does
from typing import Any

from .jsoncompat import TolerantJSONEncoder

# Tolerant: sets, mappings and collections encode as rohrpost's encoder did.
# ASCII escapes: a lone surrogate (valid in a decoded JSON string) cannot be
# written as UTF-8, and would end the socket on the server; as ``\ud800`` it
# is valid JSON every browser reads. No NaN/Infinity: JSON.parse rejects them.
_encoder = TolerantJSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)

# Browsers read ids as doubles; stay below 2**53 so they round-trip exactly.
_MAX_MESSAGE_ID = 2**53 - 1


def encode(value: Any) -> str:
    """Compact, ASCII-only JSON with Django's encoder (dates, decimals, UUIDs, lazy strings).

    Non-finite floats (a model's ``FloatField`` may hold NaN) are sent as ``null``.
    """
    try:
        return _encoder.encode(value)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        return _encoder.encode(_finite(value))


def encode_with(encoder: type[json.JSONEncoder], value: Any) -> str:
    """:func:`encode` with a project's encoder class (rohrpost's ``encoder`` attributes)."""
    options: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": True, "allow_nan": False}
    try:
        return json.dumps(value, cls=encoder, **options)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        return json.dumps(_finite(value), cls=encoder, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


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


def build_text(
    handler: str | None,
    message_id: Any = None,
    error: Any = None,
    data: Any = None,
) -> str:
    """A rohrpost frame as text; a missing ``message_id`` gets a random integer.

    The group event carries this text whatever wire protocol a socket
    speaks (each protocol rewraps it), so it is built here, in the core.
    """
    message: dict[str, Any] = {
        "id": new_message_id() if message_id is None else message_id,
        "type": handler,
    }
    if data is not None:
        message["data"] = data
    if error is not None:
        message["error"] = error
    return encode(message)
