"""JSON-RPC methods the tests call: the specification's examples, and a few more."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rohrpost_signals.jsonrpc import (
    RpcContext,
    RpcError,
    anotify_channel,
    notify_group,
    rpc_method,
    rpc_notification,
)

#: (method, params) of every notification a test method received, in order.
RECEIVED: list[tuple[str, Any]] = []


@rpc_method()
def subtract(minuend: int, subtrahend: int) -> int:
    return minuend - subtrahend


@rpc_method("sum")
async def add_all(*numbers: int) -> int:
    return sum(numbers)


@rpc_method()
def get_data() -> list[Any]:
    return ["hello", 5]


@rpc_notification()
def update(*values: int) -> None:
    RECEIVED.append(("update", list(values)))


@rpc_notification()
def notify_hello(*values: int) -> None:
    RECEIVED.append(("notify_hello", list(values)))


@rpc_notification()
async def notify_sum(*values: int) -> None:
    RECEIVED.append(("notify_sum", list(values)))


@rpc_method("test.whoami")
def whoami(*, context: RpcContext) -> dict[str, Any]:
    user = context.user
    return {
        "transport": context.transport,
        "user": getattr(user, "username", None) or None,
        "has_scope": context.scope is not None,
        "has_request": context.request is not None,
        "has_consumer": context.consumer is not None,
        "method": context.method,
        "id": context.id,
    }


@rpc_method("test.price")
def price() -> Decimal:
    return Decimal("12.50")


@rpc_method("test.unencodable")
def unencodable() -> object:
    return object()


@rpc_method("test.fail")
def fail(message: str = "it broke") -> None:
    raise ValueError(message)


@rpc_method("test.custom_error")
async def custom_error() -> None:
    raise RpcError(4001, "Out of stock", {"sku": "A-1"})


@rpc_method("test.socket_only", http=False)
def socket_only() -> str:
    return "socket"


@rpc_method("test.http_only", websocket=False)
def http_only() -> str:
    return "http"


@rpc_method("test.broadcast")
def broadcast(group: str, payload: Any) -> bool:
    notify_group(group, "test.news", payload)
    return True


@rpc_method("test.poke_me")
async def poke_me(*, context: RpcContext) -> str:
    await anotify_channel(context.consumer.channel_name, "test.poked", {"by": "server"})
    return "poked"
