"""Parsing and validating incoming rohrpost frames (shared by both consumers)."""

from __future__ import annotations

import logging
from typing import Any

from ... import exceptions as codes
from ...core.encoding import encode
from ...core.limits import MAX_ID_INTEGER, MAX_ID_LENGTH, load_json, valid_message_id
from ...exceptions import ProtocolError

logger = logging.getLogger("rohrpost_signals")

__all__ = [
    "ProtocolError",
    "error_frame",
    "internal_error_frame",
    "parse_request",
    "unknown_handler",
]


def error_frame(exc: ProtocolError) -> str:
    """The rohrpost error reply for ``exc``: its text, and its stable ``code``."""
    # Keep a missing id as null: a random one would match some other request.
    try:
        return encode(
            {
                "id": exc.message_id if valid_message_id(exc.message_id) else None,
                "type": exc.handler if isinstance(exc.handler, str) else "error",
                "error": exc.error,
                "code": exc.code,
            }
        )
    except Exception:  # the reply must go out whatever the exception holds
        logger.exception("Could not encode an error reply; sending a generic one.")
        return LAST_RESORT_REPLY


#: The reply when nothing better can be said; a plain constant that cannot fail.
LAST_RESORT_REPLY = (
    '{"id":null,"type":"error","error":"Internal error.","code":"' + codes.INTERNAL_ERROR + '"}'
)


def unknown_handler(request: dict[str, Any]) -> ProtocolError:
    """The error for a request whose ``type`` names no registered handler."""
    return ProtocolError(
        f"No registered handler called {request['type']!r}.",
        request["id"],
        request["type"],
        code=codes.UNKNOWN_TYPE,
    )


def internal_error_frame(request: dict[str, Any]) -> str:
    """The reply to a request whose handler raised (the traceback is only logged)."""
    return error_frame(
        ProtocolError(
            f"Internal error while handling {request['type']!r}.",
            request["id"],
            request["type"],
            code=codes.INTERNAL_ERROR,
        )
    )


def _too_large(text: str, limit: int) -> bool:
    # A UTF-8 character takes at most 4 bytes: skip the encode for small frames.
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8")) > limit


def parse_request(text_data: str | None, bytes_data: bytes | None, limit: int) -> dict[str, Any]:
    """The request object of a frame, or ``ProtocolError`` saying what is wrong."""
    if text_data is None:
        raise ProtocolError(
            "Binary frames are not supported; send JSON text.", code=codes.BINARY_FRAME
        )
    if _too_large(text_data, limit):
        raise ProtocolError(
            f"Message is larger than the limit of {limit} bytes.", code=codes.TOO_LARGE
        )
    request = load_json(text_data)
    if not isinstance(request, dict):
        raise ProtocolError("A message must be a JSON object.")
    message_id = request.get("id")
    handler = request.get("type")
    if "id" not in request or message_id is None:
        raise ProtocolError(
            "Missing required field 'id'.", handler=handler if isinstance(handler, str) else None
        )
    if isinstance(message_id, (dict, list)):
        raise ProtocolError("Field 'id' must be a string or a number.", code=codes.BAD_ID)
    if not valid_message_id(message_id):
        raise ProtocolError(
            f"Field 'id' must be an integer from -{MAX_ID_INTEGER} to {MAX_ID_INTEGER} "
            f"or a string of at most {MAX_ID_LENGTH} characters.",
            code=codes.BAD_ID,
        )
    if "type" not in request:
        raise ProtocolError("Missing required field 'type'.", message_id)
    if not isinstance(handler, str) or not handler:
        raise ProtocolError("Field 'type' must be a non-empty string.", message_id)
    return request
