"""The writes of a burst, for a writer process or (in-memory layer) inside the server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from channels.layers import get_channel_layer

from rohrpost_signals import dispatch

from .models import Item


def setup(count: int) -> list[int]:
    Item.objects.all().delete()
    return [Item.objects.create(name=f"item {n}").pk for n in range(count)]


def floor_text(group: str, pk: int, counter: int) -> str:
    data = {"type": "update", "group": group, "object": {"id": pk, "counter": counter}}
    return json.dumps({"id": counter, "type": "subscription-update", "data": data})


def run(
    variant: str, pks: list[int], updates: int, floor_loop: Any = None, first: int = 0
) -> list[int]:
    """Update ``updates`` times round-robin over ``pks``; when each write returned (ns).

    Update ``n`` sets ``counter`` to ``n + 1``, counting from ``first``.

    ``library`` saves (the signal sends); ``floor`` uses ``QuerySet.update`` (no
    signal) and hands both groups' pre-encoded texts to one long-lived loop.
    """
    saved = []
    items = {pk: Item.objects.get(pk=pk) for pk in pks}
    sender = FloorSender(floor_loop) if variant == "floor" else None
    for n in range(first, first + updates):
        pk = pks[n % len(pks)]
        if sender is None:
            item = items[pk]
            item.counter = n + 1
            item.save(update_fields=["counter"])
        else:
            Item.objects.filter(pk=pk).update(counter=n + 1)
            for group in (f"item-{pk}", "items"):
                sender.push(group, floor_text(group, pk, n + 1))
        saved.append(time.monotonic_ns())
    if sender is None:
        dispatch.flush(timeout=300)
    else:
        sender.flush()
    return saved


class FloorSender:
    """``group_send`` in order from one long-lived event loop (a thread of its own if none)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, daemon=True).start()
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self.done = threading.Event()
        asyncio.run_coroutine_threadsafe(self._drain(), loop)

    def push(self, group: str, text: str) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, text))

    def flush(self) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)
        self.done.wait(300)

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while (item := await self.queue.get()) is not None:
            await layer.group_send(item[0], {"type": "floor.message", "text": item[1]})
        self.done.set()
