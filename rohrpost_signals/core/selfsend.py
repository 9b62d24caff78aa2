"""Events a worker sends to its own sockets: catch-ups and re-checks.

They go through the socket's channel, so that the consumer handles them in
turn with its other events. channels-redis with several hosts delivers most
of those sends to a shard the process never reads
(:func:`rohrpost_signals._compat.misroutes_process_sends`); there each socket
joins a group of its own, which ``group_send`` routes right, and the events
go to that group.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .. import _compat
from .authorization import RESERVED_PREFIX


def socket_group(channel_name: str) -> str:
    """The group only the socket on ``channel_name`` joins (a valid group name)."""
    digest = hashlib.blake2s(channel_name.encode(), digest_size=16).hexdigest()
    return f"{RESERVED_PREFIX}socket.{digest}"


def own_groups(layer: Any, channel_name: str) -> tuple[str, ...]:
    """The socket's own group where the layer needs one, else nothing."""
    if _compat.misroutes_process_sends(layer):
        return (socket_group(channel_name),)
    return ()


async def send_to_socket(layer: Any, channel_name: str, event: dict[str, Any]) -> None:
    """Queue ``event`` for the socket on ``channel_name`` of this process."""
    if _compat.misroutes_process_sends(layer):
        await layer.group_send(socket_group(channel_name), event)
    else:
        await layer.send(channel_name, event)
