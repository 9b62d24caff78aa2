"""Sending rohrpost messages to one socket or to a group."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from channels.consumer import SyncConsumer

from ...conf import conf
from ...core import dispatch
from ...core.encoding import build_text, encode, new_message_id
from ...core.groups import is_valid_group_name
from ...core.jsoncompat import TolerantJSONEncoder

logger = logging.getLogger("rohrpost_signals")

__all__ = [
    "TolerantJSONEncoder",
    "asend_error",
    "asend_message",
    "build_message",
    "build_text",
    "send_error",
    "send_message",
    "send_success",
    "send_to_group",
]


def build_message(
    *,
    handler: str | None,
    message_id: Any = None,
    error: Any = None,
    generate_id: bool = False,
    data: Any = None,
) -> dict[str, Any]:
    """rohrpost's message dict: only the keys that have a value.

    Without ``message_id`` the message has no ``id`` unless ``generate_id``
    asks for a random one; without ``handler`` it has no ``type``.
    """
    content: dict[str, Any] = {}
    if message_id is not None:
        content["id"] = message_id
    elif generate_id:
        content["id"] = new_message_id()
    if handler:
        content["type"] = handler
    if error is not None:
        content["error"] = error
    if data is not None:
        content["data"] = data
    return content


def _reply_text(handler: str | None, message_id: Any, error: Any, data: Any) -> str:
    content = build_message(handler=handler, message_id=message_id, error=error, data=data)
    if not content:
        raise ValueError("Cannot send an empty message.")
    return encode(content)


# Tasks must be referenced until done, or the loop may collect them early.
_pending_sends: set[asyncio.Task[None]] = set()


def _is_async_send(consumer: Any) -> bool:
    return iscoroutinefunction(consumer.send)


def _log_failed_send(task: asyncio.Task[None]) -> None:
    _pending_sends.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("Sending a frame failed", exc_info=task.exception())


async def asend_text(consumer: Any, text: str) -> None:
    """Async twin of :func:`send_text`."""
    if isinstance(consumer, SyncConsumer) or not _is_async_send(consumer):
        await sync_to_async(consumer.send)(text)
    else:
        await consumer.send(text)


def send_text(consumer: Any, text: str) -> None:
    """Send a text frame through any Channels WebSocket consumer, from any context."""
    if isinstance(consumer, SyncConsumer) or not _is_async_send(consumer):
        consumer.send(text)
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(consumer.send)(text)
    else:
        # On the consumer's own loop we cannot block; the frame goes out next.
        task = loop.create_task(consumer.send(text))
        _pending_sends.add(task)
        task.add_done_callback(_log_failed_send)


def send_message(
    consumer: Any,
    handler: str | None,
    message_id: Any = None,
    error: Any = None,
    data: Any = None,
) -> None:
    """Send a message to the client behind ``consumer``, as rohrpost did.

    Keys without a value are left out (no ``id`` without ``message_id``, no
    ``type`` without ``handler``); a message with nothing in it raises
    ``ValueError``. In an async handler prefer ``await asend_message(...)``,
    which waits for the frame to be handed to the server.
    """
    send_text(consumer, _reply_text(handler, message_id, error, data))


def send_error(
    consumer: Any,
    handler: str | None,
    message_id: Any = None,
    error: Any = None,
    data: Any = None,
) -> None:
    """Send an error reply; takes the same arguments as :func:`send_message`.

    Without an ``error`` the text is ``"Error"``.
    """
    send_text(consumer, _reply_text(handler, message_id, error or "Error", data))


def send_success(
    consumer: Any,
    handler: str,
    message_id: Any,
    data: Any = None,
) -> None:
    """rohrpost's ``send_success``: :func:`send_message` that needs an id and a type."""
    if message_id is None or handler is None:
        raise ValueError("You have to provide a message ID and handler on success messages.")
    send_message(consumer, handler, message_id, data=data)


async def asend_message(
    consumer: Any,
    handler: str | None,
    message_id: Any = None,
    error: Any = None,
    data: Any = None,
) -> None:
    """Async :func:`send_message`: returns once the frame is handed to the server."""
    await asend_text(consumer, _reply_text(handler, message_id, error, data))


async def asend_error(
    consumer: Any,
    handler: str | None,
    message_id: Any = None,
    error: Any = None,
    data: Any = None,
) -> None:
    """Async :func:`send_error`: returns once the frame is handed to the server."""
    await asend_text(consumer, _reply_text(handler, message_id, error or "Error", data))


def send_to_group(
    group: str | None = None,
    handler: str | dict[str, Any] | None = None,
    *,
    message_id: Any = None,
    error: Any = None,
    data: Any = None,
    group_name: str | None = None,
    message: str | dict[str, Any] | None = None,
) -> None:
    """Send a message to every socket in ``group``.

    Like :func:`send_message`: the target, then the message type, then
    ``message_id``, ``error`` and ``data``, which here are keyword-only.
    ``send_to_group("news", "headline", data=...)`` builds the frame (with a
    random ``id``). rohrpost's form, ``send_to_group(group_name="news",
    message={...})`` (or the dict as second argument), sends a finished
    message: a dict is encoded once, text goes as it is.

    Returns at once: the message is queued to the channel layer
    (``ROHRPOST["CHANNEL_LAYER"]``) and sent in order; failures are logged.
    """
    name = group if group is not None else group_name
    if not is_valid_group_name(name):
        raise ValueError(f"{name!r} is not a valid Channels group name.")
    assert name is not None
    finished = message if message is not None else handler if isinstance(handler, dict) else None
    if finished is not None:
        text = finished if isinstance(finished, str) else encode(finished)
        origin = "finished group message"
    elif isinstance(handler, str) and handler:
        text = build_text(handler, message_id, error, data)
        origin = f"{handler!r} message"
    else:
        raise TypeError("send_to_group() needs a handler (the message type) or a message.")
    dispatch.submit(dispatch.Outgoing(conf.CHANNEL_LAYER, name, text, origin))
