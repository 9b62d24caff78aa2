"""Handle one rohrpost frame on any consumer: the counterpart of ``rohrpost.main``.

Both of this app's consumers answer every frame through these functions, and
so can a project's own consumer::

    class MyConsumer(WebsocketConsumer):
        def receive(self, text_data=None, bytes_data=None):
            handle_rohrpost_message(consumer=self, text_data=text_data)

The frame is checked (size, JSON, ``id``, ``type``, the request rate) and
answered with an error reply when it is bad, then passed to the registered
handler as ``handler(consumer, request)`` (see ``handler_registry.Adapted`` for
sync and async handlers). A handler that raises gets the client a generic
error and the server a logged traceback, instead of ending the connection.
"""

from __future__ import annotations

import logging
from typing import Any

from ... import exceptions as codes
from ...conf import conf
from ...core import limits
from ...exceptions import ProtocolError
from .frames import error_frame, internal_error_frame, parse_request, unknown_handler
from .handler_registry import HANDLERS, Handler, adapted
from .message import asend_text, send_text

__all__ = ["ahandle_rohrpost_message", "handle_rohrpost_message"]

logger = logging.getLogger("rohrpost_signals")


def _resolve(
    consumer: Any, text_data: Any, bytes_data: bytes | None
) -> tuple[dict[str, Any], Handler]:
    """The request in a frame and its handler, or ``ProtocolError``."""
    if text_data is not None and not isinstance(text_data, str):
        raise ProtocolError(
            f"Could not decode JSON message: expected text, not {type(text_data).__name__}.",
            code=codes.BAD_JSON,
        )
    request = parse_request(text_data, bytes_data, conf.MAX_MESSAGE_BYTES)
    budgets = limits.budgets_of(consumer)
    if not budgets.allow_request():
        raise budgets.rate_limited(request["id"], request["type"])
    handler = HANDLERS.get(request["type"])
    if handler is None:
        raise unknown_handler(request)
    return request, handler


def handle_rohrpost_message(
    consumer: Any, text_data: str | None = None, bytes_data: bytes | None = None
) -> None:
    """Answer one frame on a synchronous consumer (or any object with ``send``)."""
    try:
        request, handler = _resolve(consumer, text_data, bytes_data)
    except ProtocolError as exc:
        send_text(consumer, error_frame(exc))
        return
    try:
        adapted(handler).for_sync(consumer, request)
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
        request, handler = _resolve(consumer, text_data, bytes_data)
    except ProtocolError as exc:
        await asend_text(consumer, error_frame(exc))
        return
    try:
        await adapted(handler).for_async(consumer, request)
    except ProtocolError as exc:
        await asend_text(consumer, error_frame(exc))
    except Exception:
        logger.exception("Handler for %r raised", request["type"])
        await asend_text(consumer, internal_error_frame(request))
