"""The text a consumer sends for a ``rohrpost.message`` group event."""

from __future__ import annotations

import json
import logging
from typing import Any

from .encoding import encode, encode_with

logger = logging.getLogger("rohrpost_signals")


def event_text(event: dict[str, Any], encoder: type[json.JSONEncoder] | None = None) -> str | None:
    """``event["message"]``: text as it is, anything else JSON-encoded.

    This app always sends text, encoded once per group; projects that used
    rohrpost's ``send_to_group`` with a dict, or their own ``group_send``,
    send dicts, which rohrpost's consumer encoded per socket. A message that
    cannot be encoded is logged and dropped instead of closing the socket.
    """
    message = event.get("message")
    if isinstance(message, str):
        return message
    try:
        return encode(message) if encoder is None else encode_with(encoder, message)
    except (TypeError, ValueError):
        logger.exception("Dropping a group event whose message cannot be JSON-encoded")
        return None
