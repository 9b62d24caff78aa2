"""Handlers for incoming rohrpost requests, by message type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .exceptions import HandlerAlreadyRegistered

Handler = Callable[[Any, dict[str, Any]], "Awaitable[None] | None"]
H = TypeVar("H", bound=Handler)

HANDLERS: dict[str, Handler] = {}

__all__ = ["HANDLERS", "HandlerAlreadyRegistered", "rohrpost_handler"]


def rohrpost_handler(names: str | list[str] | tuple[str, ...]) -> Callable[[H], H]:
    """Register the decorated function as the handler for one or more types.

    Handlers are called as ``handler(consumer, request)`` and may be plain
    functions or coroutine functions. Registering a name twice is an error.
    """
    name_list = [names] if isinstance(names, str) else list(names)

    def decorator(func: H) -> H:
        for name in name_list:
            if not isinstance(name, str) or not name:
                raise ValueError(f"Handler names must be non-empty strings, not {name!r}.")
            existing = HANDLERS.get(name)
            if existing is not None and existing is not func:
                raise HandlerAlreadyRegistered(
                    f"A handler for {name!r} is already registered: "
                    f"{existing.__module__}.{existing.__qualname__}."
                )
            HANDLERS[name] = func
        return func

    return decorator
