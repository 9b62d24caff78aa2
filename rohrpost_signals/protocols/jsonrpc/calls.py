"""Running one call: the method lookup, params binding, the call, its reply.

The same steps serve every transport; only how a function is called differs
(an async consumer awaits, a sync consumer or the view calls directly), so
there is an async :func:`arun` and a sync :func:`run`.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from ... import exceptions as codes
from ...exceptions import ProtocolError
from .errors import INVALID_PARAMS, METHOD_NOT_FOUND, SERVER_ERROR, RpcError, code_for_reason
from .frames import Call, error_reply, result_reply
from .methods import CONTEXT_PARAMETER, RpcMethod, Transport, lookup

logger = logging.getLogger("rohrpost_signals.jsonrpc")


@dataclass(frozen=True)
class RpcContext:
    """What a method learns about its call when it declares ``context``.

    ``scope`` is set on the WebSocket transport, ``request`` (the
    ``HttpRequest``) on HTTP; ``consumer`` is the socket's consumer, through
    which a method can reach this socket (``context.consumer.channel_name``
    for :func:`~rohrpost_signals.jsonrpc.notify_channel`, ``add_to_group``).
    """

    transport: Transport
    user: Any
    method: str
    id: Any
    is_notification: bool
    scope: dict[str, Any] | None = None
    request: Any = None
    consumer: Any = None


def context_for(call: Call, transport: Transport, **where: Any) -> RpcContext:
    return RpcContext(
        transport=transport,
        method=call.method,
        id=call.id,
        is_notification=call.is_notification,
        **where,
    )


def resolve(call: Call, context: RpcContext) -> tuple[RpcMethod, inspect.BoundArguments]:
    """The function ``call`` reaches with its bound arguments, or ``RpcError``."""
    method = lookup(call.method, context.transport, call.is_notification)
    if method is None:
        raise RpcError(METHOD_NOT_FOUND, f"Method not found: {call.method!r}.")
    args: list[Any] = call.params if isinstance(call.params, list) else []
    kwargs: dict[str, Any] = dict(call.params) if isinstance(call.params, dict) else {}
    if CONTEXT_PARAMETER in kwargs and method.takes_context:
        raise RpcError(INVALID_PARAMS, f"{CONTEXT_PARAMETER!r} is not a parameter clients pass.")
    if method.takes_context:
        kwargs[CONTEXT_PARAMETER] = context
    try:
        bound = method.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise RpcError(INVALID_PARAMS, f"Invalid params: {exc}.") from None
    return method, bound


def error_for(exc: BaseException, call: Call) -> RpcError:
    """The error a call's exception is answered with."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, ProtocolError):
        # A built-in method refused: its stable code says why.
        code = INVALID_PARAMS if exc.code == codes.BAD_REQUEST else code_for_reason(exc.code)
        return RpcError(code, exc.error, {"reason": exc.code})
    logger.error("JSON-RPC method %r raised", call.method, exc_info=exc)
    return RpcError(SERVER_ERROR, str(exc) or type(exc).__name__)


def reply_to(
    call: Call, result: Any = None, error: RpcError | None = None
) -> dict[str, Any] | None:
    """The reply object, or ``None`` for a notification, which is never answered."""
    if call.is_notification:
        return None
    if error is not None:
        return error_reply(call.version, call.id, error)
    return result_reply(call.version, call.id, result)


async def arun(call: Call, context: RpcContext) -> dict[str, Any] | None:
    """Run ``call`` on an event loop; a sync function runs in a worker thread."""
    try:
        method, bound = resolve(call, context)
        if method.is_async:
            result = await method.func(*bound.args, **bound.kwargs)
        else:
            result = await database_sync_to_async(method.func)(*bound.args, **bound.kwargs)
    except Exception as exc:
        return reply_to(call, error=error_for(exc, call))
    return reply_to(call, result)


def run(call: Call, context: RpcContext) -> dict[str, Any] | None:
    """Run ``call`` in this thread; an async function runs through ``async_to_sync``."""
    try:
        method, bound = resolve(call, context)
        if method.is_async:
            result = async_to_sync(method.func)(*bound.args, **bound.kwargs)
        else:
            result = method.func(*bound.args, **bound.kwargs)
    except Exception as exc:
        return reply_to(call, error=error_for(exc, call))
    return reply_to(call, result)
