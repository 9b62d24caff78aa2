"""WebSocket consumers of the benchmark server, one per variant.

* ``BareConsumer``: the floor. Joins the groups it is asked to and forwards
  the pre-encoded text of each group event, nothing else.
* rohrpost_signals' own ``RohrpostConsumer`` (mounted in ``benchmarks.asgi``).
* rohrpost 4's ``SyncRohrpostConsumer`` plus a ``subscribe`` handler, since
  rohrpost ships none.
* ``DcrfItemConsumer``: DCRF's documented ``model_observer`` pattern with a
  group per object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from djangochannelsrestframework.consumers import AsyncAPIConsumer
from djangochannelsrestframework.decorators import action
from djangochannelsrestframework.observer import model_observer
from rohrpost.message import send_message as rohrpost_send_message
from rohrpost.registry import rohrpost_handler

from .models import DcrfItem


class BareConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        self.joined: list[str] = []
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        request = json.loads(text_data or "{}")
        group = request["data"]["group"]
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.append(group)
        await self.send(text_data=json.dumps({"id": request["id"], "type": "subscribe"}))

    async def rohrpost_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["message"])


@rohrpost_handler("subscribe")
def rohrpost_subscribe(consumer: Any, request: dict[str, Any]) -> None:
    group = request["data"]["group"]
    consumer.add_to_group(group)
    rohrpost_send_message(
        consumer=consumer, handler="subscribe", message_id=request["id"], data={"group": group}
    )


class DcrfItemConsumer(AsyncAPIConsumer):  # type: ignore[misc]
    @model_observer(DcrfItem)
    async def item_activity(self, message: Any, observer: Any = None, **kwargs: Any) -> None:
        await self.send_json(message)

    @item_activity.serializer
    def item_activity(self, instance: DcrfItem, action: Any, **kwargs: Any) -> dict[str, Any]:
        return instance.as_payload()

    @item_activity.groups_for_signal
    def item_activity(self, instance: DcrfItem, **kwargs: Any) -> Iterator[str]:
        yield f"item-{instance.pk}"

    @item_activity.groups_for_consumer
    def item_activity(self, pk: Any = None, **kwargs: Any) -> Iterator[str]:
        if pk is not None:
            yield f"item-{pk}"

    @action()
    async def subscribe_item(self, request_id: Any, pk: Any, **kwargs: Any) -> tuple[Any, int]:
        await self.item_activity.subscribe(pk=pk, request_id=request_id)
        return {"pk": pk}, 200
