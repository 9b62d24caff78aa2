"""JSON-RPC 2.0 over WebSocket and HTTP, on the same core as the rohrpost protocol.

::

    from rohrpost_signals.jsonrpc import rpc_method

    @rpc_method()
    def add(a, b):
        return a + b
"""

from .calls import RpcContext
from .consumers import JsonRpcConsumer, SyncJsonRpcConsumer
from .errors import RpcError
from .methods import rpc_method, rpc_notification
from .notify import anotify_channel, anotify_group, notify_channel, notify_group
from .views import JsonRpcView

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
