"""Echo handlers for the round-trip benchmark, the same work in each protocol.

A sync one (it runs in a worker thread, as sync handlers and methods do) and
an async one (on the event loop), for the rohrpost consumer and for JSON-RPC.
"""

from __future__ import annotations

from typing import Any

from rohrpost_signals.jsonrpc import rpc_method
from rohrpost_signals.message import asend_message, send_message
from rohrpost_signals.registry import rohrpost_handler


@rohrpost_handler("bench.echo")
def rohrpost_echo(consumer: Any, request: dict[str, Any]) -> None:
    send_message(consumer, "bench.echo", request["id"], data=request.get("data"))


@rohrpost_handler("bench.aecho")
async def rohrpost_aecho(consumer: Any, request: dict[str, Any]) -> None:
    await asend_message(consumer, "bench.aecho", request["id"], data=request.get("data"))


@rpc_method("bench.echo")
def jsonrpc_echo(value: Any) -> Any:
    return value


@rpc_method("bench.aecho")
async def jsonrpc_aecho(value: Any) -> Any:
    return value
