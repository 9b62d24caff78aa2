"""The registered JSON-RPC methods and notifications, and their decorators."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from asgiref.sync import iscoroutinefunction

from ...exceptions import HandlerAlreadyRegistered

F = TypeVar("F", bound=Callable[..., Any])

Transport = Literal["websocket", "http"]

#: The name of the keyword parameter through which a function receives its :class:`~.RpcContext`.
CONTEXT_PARAMETER = "context"

#: Methods every WebSocket consumer answers itself; they cannot be registered.
BUILTINS = frozenset({"subscribe", "unsubscribe", "ping"})


@dataclass(frozen=True)
class RpcMethod:
    """A registered function and where it may be called."""

    name: str
    func: Callable[..., Any]
    notification: bool
    websocket: bool
    http: bool
    is_async: bool
    takes_context: bool
    signature: inspect.Signature

    def allowed_on(self, transport: Transport) -> bool:
        return self.websocket if transport == "websocket" else self.http


METHODS: dict[str, RpcMethod] = {}


def _takes_context(signature: inspect.Signature) -> bool:
    parameter = signature.parameters.get(CONTEXT_PARAMETER)
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def _register(
    name: str | None, notification: bool, websocket: bool, http: bool
) -> Callable[[F], F]:
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"A method name must be a non-empty string, not {name!r}.")

    def decorator(func: F) -> F:
        method_name = name or func.__name__
        if method_name in BUILTINS:
            raise HandlerAlreadyRegistered(f"{method_name!r} is a built-in JSON-RPC method.")
        existing = METHODS.get(method_name)
        if existing is not None and existing.func is not func:
            raise HandlerAlreadyRegistered(
                f"A JSON-RPC method {method_name!r} is already registered: "
                f"{existing.func.__module__}.{existing.func.__qualname__}."
            )
        signature = inspect.signature(func)
        METHODS[method_name] = RpcMethod(
            name=method_name,
            func=func,
            notification=notification,
            websocket=websocket,
            http=http,
            is_async=iscoroutinefunction(func),
            takes_context=_takes_context(signature),
            signature=signature,
        )
        return func

    return decorator


def rpc_method(
    name: str | None = None, *, websocket: bool = True, http: bool = True
) -> Callable[[F], F]:
    """Register a function, sync or async, as the JSON-RPC method ``name``.

    The name defaults to the function's own. Its return value is the reply's
    ``result``; ``params`` map onto its parameters by position or by name. A
    keyword parameter called ``context`` receives the call's
    :class:`~rohrpost_signals.jsonrpc.RpcContext`. With ``websocket=False`` or
    ``http=False`` the method is "Method not found" on that transport.
    Registering a name twice raises ``HandlerAlreadyRegistered``.
    """
    return _register(name, False, websocket, http)


def rpc_notification(
    name: str | None = None, *, websocket: bool = True, http: bool = True
) -> Callable[[F], F]:
    """Register a function that handles the client notification ``name``.

    Like :func:`rpc_method`, but only calls without ``id`` reach it; there is
    never a reply, and what it returns is ignored.
    """
    return _register(name, True, websocket, http)


def lookup(name: str, transport: Transport, is_notification: bool) -> RpcMethod | None:
    """The function a call reaches, or ``None`` ("Method not found")."""
    method = METHODS.get(name)
    if method is None or not method.allowed_on(transport):
        return None
    if method.notification and not is_notification:
        return None
    return method
