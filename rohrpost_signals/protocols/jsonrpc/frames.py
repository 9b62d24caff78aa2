"""JSON-RPC frames: parsing requests and batches, rendering replies and notifications.

Nothing here runs a method; :mod:`.calls` does. A request without
``"jsonrpc": "2.0"`` that names a method is a JSON-RPC 1.0 request and is
answered the 1.0 way (``result`` and ``error``, one of them null).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from ... import exceptions as codes
from ...core.limits import load_json
from ...exceptions import ProtocolError
from .errors import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, RpcError

logger = logging.getLogger("rohrpost_signals.jsonrpc")

V2 = "2.0"
V1 = "1.0"

# As for rohrpost frames: ids a browser reads back exactly.
_MAX_ID_LENGTH = 128
_MAX_ID_NUMBER = 2**53


@dataclass(frozen=True)
class Call:
    """One well-formed request or notification."""

    version: str
    id: Any
    method: str
    params: list[Any] | dict[str, Any] | None
    is_notification: bool


@dataclass(frozen=True)
class Invalid:
    """A request object that is no valid call: it is answered with ``error``."""

    version: str
    id: Any
    error: RpcError


Item = Call | Invalid


@dataclass(frozen=True)
class Parsed:
    """The calls of a frame, and whether they came as a batch (an array)."""

    items: list[Item]
    batch: bool


def _error(code: int, reason: str, detail: str | None = None) -> RpcError:
    error = RpcError.standard(code, {"reason": reason})
    if detail:
        error.data["detail"] = detail
    return error


def _too_large(text: str, limit: int) -> bool:
    # A UTF-8 character takes at most 4 bytes: skip the encode for small frames.
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8")) > limit


def parse(text: str | None, limit: int) -> Parsed:
    """The calls in ``text``, or ``RpcError`` for the single error reply to the whole frame."""
    if text is None:
        raise _error(PARSE_ERROR, codes.BINARY_FRAME, "Binary frames are not supported.")
    if _too_large(text, limit):
        raise _error(INVALID_REQUEST, codes.TOO_LARGE, f"The request is larger than {limit} bytes.")
    try:
        # The loader both protocols share: a depth limit, and no NaN, Infinity
        # or numbers a double cannot hold (no browser could read them back).
        value = load_json(text)
    except ProtocolError as exc:
        raise _error(PARSE_ERROR, codes.BAD_JSON, exc.error) from None
    if isinstance(value, list):
        if not value:
            raise _error(INVALID_REQUEST, codes.BAD_REQUEST, "An empty batch.")
        return Parsed([parse_item(item) for item in value], batch=True)
    return Parsed([parse_item(value)], batch=False)


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return len(value) <= _MAX_ID_LENGTH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= _MAX_ID_NUMBER


def _bad(version: str, call_id: Any, detail: str | None = None) -> Invalid:
    return Invalid(version, call_id, _error(INVALID_REQUEST, codes.BAD_REQUEST, detail))


def parse_item(item: Any) -> Item:
    """One request object of a frame or batch."""
    if not isinstance(item, dict):
        return _bad(V2, None)
    has_id = "id" in item
    call_id = item.get("id")
    if not _valid_id(call_id):
        return Invalid(V2, None, _error(INVALID_REQUEST, codes.BAD_ID, "Bad 'id'."))
    method = item.get("method")
    if "jsonrpc" in item:
        version = V2
        if item["jsonrpc"] != V2:
            return _bad(V2, call_id, "Bad 'jsonrpc'.")
        is_notification = not has_id
    elif isinstance(method, str):
        version = V1
        is_notification = call_id is None
    else:
        # Neither 2.0 nor a 1.0 call: answered in the current version's shape.
        return _bad(V2, call_id)
    if not isinstance(method, str) or not method:
        return _bad(version, call_id, "Bad 'method'.")
    params = item.get("params")
    if params is not None and not isinstance(params, (list, dict)):
        return _bad(version, call_id, "Bad 'params'.")
    return Call(version, call_id, method, params, is_notification)


#: What a frame gets when answering it failed in a way nothing else caught.
LAST_RESORT_REPLY = '{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":null}'


def result_reply(version: str, call_id: Any, result: Any) -> dict[str, Any]:
    if version == V1:
        return {"result": result, "error": None, "id": call_id}
    return {"jsonrpc": V2, "result": result, "id": call_id}


def error_reply(version: str, call_id: Any, error: RpcError) -> dict[str, Any]:
    if version == V1:
        return {"result": None, "error": error.as_dict(), "id": call_id}
    return {"jsonrpc": V2, "error": error.as_dict(), "id": call_id}


def encode_reply(reply: dict[str, Any], encoder: type[json.JSONEncoder]) -> str:
    """Encode a reply; a result the encoder refuses becomes an internal error."""
    try:
        return dumps(reply, encoder)
    except (TypeError, ValueError, RecursionError):
        logger.exception("Could not encode the reply to JSON-RPC id %r", reply.get("id"))
        version = V1 if "jsonrpc" not in reply else V2
        error = _error(INTERNAL_ERROR, codes.INTERNAL_ERROR)
        return dumps(error_reply(version, reply.get("id"), error), json.JSONEncoder)


def dumps(value: Any, encoder: type[json.JSONEncoder]) -> str:
    # ASCII and no NaN: every browser's JSON.parse reads it, whatever a method returns.
    return json.dumps(value, cls=encoder, separators=(",", ":"), allow_nan=False)


def join_batch(texts: list[str]) -> str | None:
    """The reply to a batch: the array of its replies, or nothing for all-notifications."""
    return f"[{','.join(texts)}]" if texts else None


def notification_text(method: str, params: Any, encoder: type[json.JSONEncoder]) -> str:
    """A server-to-client notification."""
    message: dict[str, Any] = {"jsonrpc": V2, "method": method}
    if params is not None:
        message["params"] = params
    return dumps(message, encoder)


# The pushes the package's sender and consumers encode in rohrpost form. Their
# ``data`` is the notification's ``params`` as it is: it is cut out of the text
# instead of decoded and encoded again for every JSON-RPC socket.
_SPLICEABLE = re.compile(
    r'\{"id":-?\d+,"type":"(subscription-update|resync-required|unsubscribed)","data":'
)


def from_group_text(text: str) -> str:
    """A group event's rohrpost text as the JSON-RPC notification a socket gets."""
    match = _SPLICEABLE.match(text)
    if match is not None and text.endswith("}"):
        return f'{{"jsonrpc":"2.0","method":"{match.group(1)}","params":{text[match.end() : -1]}}}'
    # Any other group message (``send_to_group``, ``notify_group``): method is its type.
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        # Not a rohrpost message (a project's own group_send): pass it on whole.
        return notification_text(
            "message", message if message is not None else text, json.JSONEncoder
        )
    params = message.get("data")
    if "error" in message:
        params = {"data": params, "error": message["error"]}
    return notification_text(message["type"], params, json.JSONEncoder)
