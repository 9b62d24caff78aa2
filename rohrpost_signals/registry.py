"""Handlers for incoming rohrpost requests, by message type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from .exceptions import HandlerAlreadyRegistered

Handler = Callable[[Any, dict[str, Any]], "Awaitable[None] | None"]
H = TypeVar("H", bound=Handler)

HANDLERS: dict[str, Handler] = {}

__all__ = ["HANDLERS", "HandlerAlreadyRegistered", "rohrpost_handler"]


@overload
def rohrpost_handler(names: H) -> H: ...


@overload
def rohrpost_handler(names: str | list[str] | tuple[str, ...] = "") -> Callable[[H], H]: ...


def rohrpost_handler(names: Any = "") -> Any:
    """Register the decorated function as the handler for one or more types.

    Without a name (``@rohrpost_handler()`` or ``@rohrpost_handler``) the
    function's name is the type, as in rohrpost. Handlers are called as
    ``handler(consumer, request)`` and may be plain functions or coroutine
    functions. Registering a name twice is an error.
    """
    if callable(names):
        return _register(names, [])
    return lambda func: _register(func, [names] if isinstance(names, str) else list(names))


def _register(func: H, names: list[Any]) -> H:
    if not names or names == [""]:
        names = [func.__name__]
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Handler names must be non-empty strings, not {name!r}.")
        existing = HANDLERS.get(name)
        if existing is not None and existing is not func:
            # The start of the text is rohrpost's, which projects' tests match.
            raise HandlerAlreadyRegistered(
                f'Handler for "{name}" is already defined: '
                f"{existing.__module__}.{existing.__qualname__}."
            )
    for name in names:
        HANDLERS[name] = func
    return func
