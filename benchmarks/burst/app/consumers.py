"""The bare-Channels floor: join groups, forward pre-encoded text, nothing else."""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer


class FloorConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
        request = json.loads(text_data or "{}")
        group = request["data"]["group"]
        await self.channel_layer.group_add(group, self.channel_name)
        reply = {"id": request["id"], "type": "subscribe", "data": {"group": group}}
        await self.send(text_data=json.dumps(reply))

    async def floor_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])
