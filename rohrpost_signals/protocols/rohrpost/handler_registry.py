"""Handlers for incoming rohrpost requests, by message type."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from asgiref.sync import async_to_sync, iscoroutinefunction
from channels.db import database_sync_to_async

from ...exceptions import HandlerAlreadyRegistered

Handler = Callable[[Any, dict[str, Any]], "Awaitable[None] | None"]
H = TypeVar("H", bound=Handler)

HANDLERS: dict[str, Handler] = {}

__all__ = ["HANDLERS", "HandlerAlreadyRegistered", "adapted", "rohrpost_handler"]


@dataclass(frozen=True)
class Adapted:
    """One handler, callable the way each kind of consumer calls it.

    The contract: the async consumer awaits ``for_async(consumer, request)``,
    the sync consumer calls ``for_sync(consumer, request)``. A plain function
    runs in a worker thread for the async consumer (``database_sync_to_async``,
    so stale database connections are closed around it); a coroutine function
    runs in the consumer's thread through ``async_to_sync`` for the sync one.
    Which one a handler is, is decided once, when it is adapted.
    """

    for_async: Callable[[Any, dict[str, Any]], Awaitable[Any]]
    for_sync: Callable[[Any, dict[str, Any]], Any]


_adapted: weakref.WeakKeyDictionary[Callable[..., Any], Adapted] = weakref.WeakKeyDictionary()


def adapted(handler: Handler) -> Adapted:
    """The adapters of ``handler``, made when it was registered (or on first use)."""
    found = _adapted.get(handler)
    if found is None:
        found = _adapted[handler] = _adapt(handler)
    return found


def _adapt(handler: Handler) -> Adapted:
    # Built-in handlers come with an implementation for each kind of consumer.
    native_async = getattr(handler, "rohrpost_async", None)
    if native_async is not None:
        return Adapted(for_async=native_async, for_sync=handler)
    if iscoroutinefunction(handler):
        return Adapted(for_async=handler, for_sync=async_to_sync(handler))
    return Adapted(for_async=database_sync_to_async(handler), for_sync=handler)


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
    adapted(func)
    for name in names:
        HANDLERS[name] = func
    return func
