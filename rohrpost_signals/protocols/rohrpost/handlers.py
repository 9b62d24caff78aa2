"""Built-in request handlers: ``ping``, ``subscribe`` and ``unsubscribe``.

Each delegates to the consumer's ``rohrpost_<type>`` method, which is a
coroutine on the async consumer and a plain method on the sync one; each
handler has an implementation for both (see :class:`handler_registry.Adapted`).
``ping`` also answers on any other consumer (a hand-written one calling
:func:`~rohrpost_signals.main.handle_rohrpost_message`, or a test double).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ...core.encoding import build_text
from ...exceptions import ProtocolError
from .handler_registry import rohrpost_handler
from .message import asend_text, send_text

BuiltinSync = Callable[[Any, dict[str, Any]], Any]
BuiltinAsync = Callable[[Any, dict[str, Any]], Awaitable[Any]]


def _with_async(implementation: BuiltinAsync) -> Callable[[BuiltinSync], BuiltinSync]:
    """Attach the async consumer's implementation to a built-in handler."""

    def attach(func: BuiltinSync) -> BuiltinSync:
        func.rohrpost_async = implementation  # type: ignore[attr-defined]
        return func

    return attach


def _pong(request: dict[str, Any]) -> str:
    return build_text("pong", request["id"], data=request.get("data"))


async def _aping(consumer: Any, request: dict[str, Any]) -> None:
    ping = getattr(consumer, "rohrpost_ping", None)
    if ping is not None:
        await ping(request)
    else:
        await asend_text(consumer, _pong(request))


@rohrpost_handler("ping")
@_with_async(_aping)
def handle_ping(consumer: Any, request: dict[str, Any]) -> None:
    ping = getattr(consumer, "rohrpost_ping", None)
    if ping is not None:
        ping(request)
    else:
        send_text(consumer, _pong(request))


async def _asubscribe(consumer: Any, request: dict[str, Any]) -> None:
    await _consumer_method(consumer, request, "rohrpost_subscribe")(request)


@rohrpost_handler("subscribe")
@_with_async(_asubscribe)
def handle_subscribe(consumer: Any, request: dict[str, Any]) -> None:
    _consumer_method(consumer, request, "rohrpost_subscribe")(request)


async def _aunsubscribe(consumer: Any, request: dict[str, Any]) -> None:
    await _consumer_method(consumer, request, "rohrpost_unsubscribe")(request)


@rohrpost_handler("unsubscribe")
@_with_async(_aunsubscribe)
def handle_unsubscribe(consumer: Any, request: dict[str, Any]) -> None:
    _consumer_method(consumer, request, "rohrpost_unsubscribe")(request)


def _consumer_method(consumer: Any, request: dict[str, Any], name: str) -> Any:
    method = getattr(consumer, name, None)
    if method is None:
        raise ProtocolError(
            f"{type(consumer).__name__} does not support {request['type']!r}; "
            "route RohrpostConsumer or SyncRohrpostConsumer, or subclass one.",
            request["id"],
            request["type"],
        )
    return method
