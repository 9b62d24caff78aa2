"""Consumers of the test project's own: subclasses, as a project would write them."""

from __future__ import annotations

import json
from typing import Any

from rohrpost_signals.consumers import RohrpostConsumer, SyncRohrpostConsumer

from .models import Order


class OrderCountConsumer(RohrpostConsumer):
    """Answers every group message with the number of orders, read with the async ORM."""

    async def rohrpost_message(self, event: dict[str, Any]) -> None:
        count = await Order.objects.acount()
        await self.send(text_data=json.dumps({"type": "order-count", "count": count}))


class SyncOrderCountConsumer(SyncRohrpostConsumer):
    """The same on the sync consumer."""

    def rohrpost_message(self, event: dict[str, Any]) -> None:
        count = Order.objects.count()
        self.send(text_data=json.dumps({"type": "order-count", "count": count}))
