"""Shared test helpers."""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from rohrpost_signals import dispatch


class GroupListener:
    """A channel joined to groups of the real configured layer, read from sync code."""

    def __init__(self, *groups: str) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        for group in groups:
            async_to_sync(self.layer.group_add)(group, self.channel)

    def messages(self, timeout: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrived, decoded; waits ``timeout`` for stragglers."""
        assert dispatch.flush(timeout=5), "messages still queued for the layer"

        async def drain() -> list[dict[str, Any]]:
            import asyncio

            received = []
            while True:
                try:
                    event = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
                except asyncio.TimeoutError:
                    return received
                assert event["type"] == "rohrpost.message"
                received.append(json.loads(event["message"]))

        return async_to_sync(drain)()
