"""The data of a subscribe request, as every wire protocol carries it.

Both protocols send ``{"group": ..., "since": ..., "epoch": ...}`` (the
rohrpost request's ``data``, the JSON-RPC call's ``params``); the checks and
their error replies are the same whatever the protocol.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import ProtocolError
from .groups import is_valid_group_name


def subscription_group(request: dict[str, Any]) -> str:
    """The group a subscribe/unsubscribe request names.

    ``data`` may be ``{"group": "order-5"}``, the bare string ``"order-5"``,
    or rohrpost.js-style ``{"type": "order", "id": 5}`` (meaning ``order-5``).
    """
    data = request.get("data")
    group: Any = None
    if isinstance(data, str):
        group = data
    elif isinstance(data, dict):
        if "group" in data:
            group = data["group"]
        elif isinstance(data.get("type"), str) and isinstance(data.get("id"), (int, str)):
            group = f"{data['type']}-{data['id']}"
    if not is_valid_group_name(group):
        raise ProtocolError(
            "A subscription needs data.group: a name shorter than 100 characters of "
            "ASCII letters, digits, '-', '_' or '.'.",
            request["id"],
            request["type"],
        )
    assert isinstance(group, str)
    return group


def subscription_since(request: dict[str, Any]) -> int | None:
    """The ``since`` of a resuming subscribe: the last ``seq`` the client saw."""
    data = request.get("data")
    if not isinstance(data, dict) or data.get("since") is None:
        return None
    since = data["since"]
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise ProtocolError(
            "data.since must be a non-negative integer: the last seq the client saw.",
            request["id"],
            request["type"],
        )
    return since


#: Longest ``epoch`` a client may send back (the server's are about 20 characters).
MAX_EPOCH_LENGTH = 64


def subscription_epoch(request: dict[str, Any]) -> str | None:
    """The ``epoch`` of a resuming subscribe: the one the client's ``since`` belongs to."""
    data = request.get("data")
    if not isinstance(data, dict) or data.get("epoch") is None:
        return None
    epoch = data["epoch"]
    if not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_EPOCH_LENGTH:
        raise ProtocolError(
            f"data.epoch must be a string of at most {MAX_EPOCH_LENGTH} characters: the epoch "
            "of the last seq the client saw.",
            request["id"],
            request["type"],
        )
    return epoch
