"""Built-in request handlers: ``ping``, ``subscribe`` and ``unsubscribe``.

They delegate to the consumer, which knows whether it is sync or async; the
consumers call built-ins directly instead of in a worker thread.
"""

from __future__ import annotations

from typing import Any

from .registry import rohrpost_handler


def _builtin(func: Any) -> Any:
    func.rohrpost_builtin = True
    return func


@rohrpost_handler("ping")
@_builtin
def handle_ping(consumer: Any, request: dict[str, Any]) -> Any:
    return consumer.rohrpost_ping(request)


@rohrpost_handler("subscribe")
@_builtin
def handle_subscribe(consumer: Any, request: dict[str, Any]) -> Any:
    return consumer.rohrpost_subscribe(request)


@rohrpost_handler("unsubscribe")
@_builtin
def handle_unsubscribe(consumer: Any, request: dict[str, Any]) -> Any:
    return consumer.rohrpost_unsubscribe(request)
