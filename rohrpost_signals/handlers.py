"""Built-in request handlers: ``ping``, ``subscribe`` and ``unsubscribe``.

They delegate to the consumer, which knows whether it is sync or async; the
consumers call built-ins directly instead of in a worker thread. ``ping`` also
answers on any other consumer (a hand-written one calling
:func:`~rohrpost_signals.main.handle_rohrpost_message`, or a test double).
"""

from __future__ import annotations

from typing import Any

from .exceptions import ProtocolError
from .message import build_text, send_text
from .registry import rohrpost_handler


def _builtin(func: Any) -> Any:
    func.rohrpost_builtin = True
    return func


@rohrpost_handler("ping")
@_builtin
def handle_ping(consumer: Any, request: dict[str, Any]) -> Any:
    ping = getattr(consumer, "rohrpost_ping", None)
    if ping is not None:
        return ping(request)
    send_text(consumer, build_text("pong", request["id"], data=request.get("data")))
    return None


@rohrpost_handler("subscribe")
@_builtin
def handle_subscribe(consumer: Any, request: dict[str, Any]) -> Any:
    return _consumer_method(consumer, request, "rohrpost_subscribe")(request)


@rohrpost_handler("unsubscribe")
@_builtin
def handle_unsubscribe(consumer: Any, request: dict[str, Any]) -> Any:
    return _consumer_method(consumer, request, "rohrpost_unsubscribe")(request)


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
