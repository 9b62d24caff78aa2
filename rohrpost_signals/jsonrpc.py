"""JSON-RPC 2.0 over WebSocket and HTTP, on the same core as the rohrpost protocol.

::

    from rohrpost_signals.jsonrpc import rpc_method

    @rpc_method()
    def add(a, b):
        return a + b

The code lives in ``rohrpost_signals.protocols.jsonrpc``.
"""

from .protocols.jsonrpc import (
    JsonRpcConsumer,
    JsonRpcView,
    RpcContext,
    RpcError,
    SyncJsonRpcConsumer,
    anotify_channel,
    anotify_group,
    notify_channel,
    notify_group,
    rpc_method,
    rpc_notification,
)

__all__ = [
    "JsonRpcConsumer",
    "JsonRpcView",
    "RpcContext",
    "RpcError",
    "SyncJsonRpcConsumer",
    "anotify_channel",
    "anotify_group",
    "notify_channel",
    "notify_group",
    "rpc_method",
    "rpc_notification",
]
