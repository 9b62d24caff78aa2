"""Server-to-client JSON-RPC notifications, to a group or to one socket.

The event is the package's group event: its text is a rohrpost message whose
``type`` is the method and ``data`` the params. JSON-RPC sockets receive it as
``{"jsonrpc": "2.0", "method": ..., "params": ...}``, rohrpost sockets in the
same group as ``{"id": ..., "type": method, "data": params}``.
:func:`~rohrpost_signals.testing.capture_notifications` sees both kinds.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from ...conf import conf
from ...core import dispatch
from ...core.encoding import build_text
from ...core.groups import is_valid_group_name

__all__ = ["anotify_channel", "anotify_group", "notify_channel", "notify_group"]


def _outgoing(target: str, method: str, params: Any) -> dispatch.Outgoing | None:
    """The message, or ``None`` when a test capture keeps it from the layer."""
    if not isinstance(method, str) or not method:
        raise ValueError(f"A notification's method must be a non-empty string, not {method!r}.")
    text = build_text(method, data=params)
    item = dispatch.Outgoing(conf.CHANNEL_LAYER, target, text, f"{method!r} notification")
    for intercept in list(dispatch.interceptors):
        if intercept(item):
            return None
    return item


def _check_group(group: str) -> None:
    if not is_valid_group_name(group):
        raise ValueError(f"{group!r} is not a valid Channels group name.")


def _layer() -> Any:
    layer = get_channel_layer(conf.CHANNEL_LAYER)
    if layer is None:
        raise RuntimeError(f"No channel layer is configured for alias {conf.CHANNEL_LAYER!r}.")
    return layer


def _event(item: dispatch.Outgoing) -> dict[str, Any]:
    return {"type": dispatch.EVENT_TYPE, "message": item.text}


def notify_group(group: str, method: str, params: Any = None) -> None:
    """Send the notification ``method`` with ``params`` to every socket in ``group``.

    Returns at once: like model updates, it is queued and sent in order by the
    process's sender; failures are logged.
    """
    _check_group(group)
    text = build_text(method, data=params)
    dispatch.submit(dispatch.Outgoing(conf.CHANNEL_LAYER, group, text, f"{method!r} notification"))


async def anotify_group(group: str, method: str, params: Any = None) -> None:
    """Async :func:`notify_group`: returns once the layer has the message."""
    _check_group(group)
    item = _outgoing(group, method, params)
    if item is not None:
        await _layer().group_send(group, _event(item))


def notify_channel(channel_name: str, method: str, params: Any = None) -> None:
    """Send the notification to one socket, by its consumer's ``channel_name``.

    Blocks until the layer has it; in async code await :func:`anotify_channel`.
    """
    item = _outgoing(channel_name, method, params)
    if item is not None:
        async_to_sync(_layer().send)(channel_name, _event(item))


async def anotify_channel(channel_name: str, method: str, params: Any = None) -> None:
    """Async :func:`notify_channel`."""
    item = _outgoing(channel_name, method, params)
    if item is not None:
        await _layer().send(channel_name, _event(item))
