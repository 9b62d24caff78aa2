"""Handle one rohrpost frame on any consumer: the counterpart of ``rohrpost.main``.

For projects whose own consumer calls the message handler itself::

    class MyConsumer(WebsocketConsumer):
        def receive(self, text_data=None, bytes_data=None):
            handle_rohrpost_message(consumer=self, text_data=text_data)

The frame is checked and answered as by this app's consumers (the same error
replies), then passed to the registered handler as ``handler(consumer,
request)``. A handler that raises gets the client a generic error and the
server a logged traceback, instead of ending the connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from . import exceptions as codes
from .conf import conf
from .exceptions import ProtocolError
from .message import asend_text, send_text
from .protocol import error_frame, internal_error_frame, parse_request, unknown_handler
from .registry import HANDLERS

__all__ = ["ahandle_rohrpost_message", "handle_rohrpost_message"]

logger = logging.getLogger("rohrpost_signals")


def _resolve(text_data: Any, bytes_data: bytes | None) -> tuple[dict[str, Any], Any]:
    if text_data is not None and not isinstance(text_data, str):
        raise ProtocolError(
            f"Could not decode JSON message: expected text, not {type(text_data).__name__}.",
            code=codes.BAD_JSON,
        )
    request = parse_request(text_data, bytes_data, conf.MAX_MESSAGE_BYTES)
    handler = HANDLERS.get(request["type"])
    if handler is None:
        raise unknown_handler(request)
    return request, handler


def handle_rohrpost_message(
    consumer: Any, text_data: str | None = None, bytes_data: bytes | None = None
) -> None:
    """Answer one frame on a synchronous consumer (or any object with ``send``)."""
    try:
        request, handler = _resolve(text_data, bytes_data)
    except ProtocolError as exc:
        send_text(consumer, error_frame(exc))
        return
    try:
        if asyncio.iscoroutinefunction(handler):
            async_to_sync(handler)(consumer, request)
        else:
            handler(consumer, request)
    except ProtocolError as exc:
        send_text(consumer, error_frame(exc))
    except Exception:
        logger.exception("Handler for %r raised", request["type"])
        send_text(consumer, internal_error_frame(request))


async def ahandle_rohrpost_message(
    consumer: Any, text_data: str | None = None, bytes_data: bytes | None = None
) -> None:
    """Answer one frame on an async consumer; plain-function handlers run in a thread."""
    try:
        request, handler = _resolve(text_data, bytes_data)
    except ProtocolError as exc:
        await asend_text(consumer, error_frame(exc))
        return
    try:
        if getattr(handler, "rohrpost_builtin", False) or asyncio.iscoroutinefunction(handler):
            result = handler(consumer, request)
            if result is not None:
                await result
        else:
            await database_sync_to_async(handler)(consumer, request)
    except ProtocolError as exc:
        await asend_text(consumer, error_frame(exc))
    except Exception:
        logger.exception("Handler for %r raised", request["type"])
        await asend_text(consumer, internal_error_frame(request))
