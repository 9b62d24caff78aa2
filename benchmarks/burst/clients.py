"""Raw WebSocket clients with no repair logic: they record every frame they get."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


@dataclass
class Client:
    port: int
    path: str
    groups: list[str]
    #: (group, counter or None for resync-required, arrival in ns), in arrival order.
    frames: list[tuple[str, int | None, int]] = field(default_factory=list)
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None
    #: Per group, the highest counter received so far.
    newest: dict[str, int] = field(default_factory=dict)
    #: Set on every frame, so a waiter wakes on arrivals instead of polling.
    arrived: asyncio.Event | None = None
    #: The close code, if the server closed the socket (a failed run tells why).
    close_code: int | None = None

    async def start(self) -> None:
        self.ws = await connect(
            f"ws://127.0.0.1:{self.port}{self.path}",
            max_size=None,
            max_queue=None,
            compression=None,
            open_timeout=60,
            ping_interval=None,
        )
        for n, group in enumerate(self.groups):
            await self.ws.send(json.dumps({"id": n, "type": "subscribe", "data": {"group": group}}))
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if reply.get("type") != "subscribe" or "error" in reply:
                raise RuntimeError(f"subscribe failed: {reply}")
        self.reader = asyncio.ensure_future(self._read(self.ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._record(json.loads(raw), time.monotonic_ns())
        finally:
            # An abnormal close raises out of the loop: keep its code either way.
            self.close_code = ws.close_code
            if self.arrived is not None:
                self.arrived.set()  # nothing more will come: a waiter stops waiting for it

    def _record(self, message: dict[str, Any], now: int) -> None:
        data = message.get("data") or {}
        if message.get("type") == "subscription-update":
            group, counter = data["group"], data["object"]["counter"]
            if counter == 0:
                # The item's creation in the set-up (counter 0), still on its way when the
                # client subscribed: not part of the burst.
                return
            self.frames.append((group, counter, now))
            self.newest[group] = max(counter, self.newest.get(group, 0))
        elif message.get("type") == "resync-required":
            self.frames.append((data["group"], None, now))
        if self.arrived is not None:
            self.arrived.set()

    @property
    def ended(self) -> bool:
        """The socket closed: nothing more can arrive."""
        return self.reader is not None and self.reader.done()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()


async def start_all(clients: list[Client], batch: int = 50) -> None:
    for start in range(0, len(clients), batch):
        await asyncio.gather(*(c.start() for c in clients[start : start + batch]))


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
