"""Many WebSocket clients in one asyncio process, and a tally of what they receive.

Every update carries its ``counter`` value; each received frame is matched
by that number (a regex, the same cost for every variant) and stamped with
``time.monotonic_ns()``, which is the same clock as the writer's on Linux.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect

COUNTER = re.compile(rb'"counter":\s*(\d+)')


class Tally:
    """Per update number: how many clients got it, first and last arrival."""

    def __init__(self) -> None:
        self.count: defaultdict[int, int] = defaultdict(int)
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.received = 0
        self._waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self._progress = asyncio.Event()

    def record(self, k: int, t: int) -> None:
        self.received += 1
        count = self.count[k] = self.count[k] + 1
        if count == 1:
            self.first[k] = t
        self.last[k] = t
        waiter = self._waiters.get(k)
        if waiter is not None and count >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)
        self._progress.set()

    async def wait(self, k: int, target: int, timeout: float) -> bool:
        """Wait until ``target`` clients have update ``k``; False on timeout."""
        if self.count[k] >= target:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[k] = (target, future)
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            self._waiters.pop(k, None)

    async def quiet(self, idle: float, limit: float) -> None:
        """Return once nothing arrived for ``idle`` seconds (or after ``limit``)."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), idle)
            except asyncio.TimeoutError:
                return


class Swarm:
    def __init__(self, url: str, tally: Tally) -> None:
        self.url = url
        self.tally = tally
        self.clients: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []

    async def _open_one(self, frames: list[str]) -> None:
        ws = await connect(
            self.url,
            compression=None,
            ping_interval=None,
            max_size=None,
            open_timeout=120,
            close_timeout=5,
        )
        for frame in frames:
            await ws.send(frame)
            reply = json.loads(await ws.recv())
            if "error" in reply or reply.get("response_status", 200) != 200:
                raise RuntimeError(f"subscribe failed: {reply!r}")
        self.clients.append(ws)
        self.readers.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        record = self.tally.record
        clock = time.monotonic_ns
        search = COUNTER.search
        try:
            async for message in ws:
                data = message if isinstance(message, bytes) else message.encode()
                found = search(data)
                if found is not None:
                    record(int(found.group(1)), clock())
        except Exception:  # a closing socket ends its reader
            pass

    async def open(
        self, count: int, frames_for: Callable[[int], list[str]], concurrency: int = 50
    ) -> None:
        """Connect ``count`` clients; client ``i`` sends ``frames_for(i)`` and awaits replies."""
        semaphore = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with semaphore:
                await self._open_one(frames_for(index))

        await asyncio.gather(*(one(i) for i in range(count)))

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.clients), return_exceptions=True)
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.clients.clear()
        self.readers.clear()


def rohrpost_subscribe(group: str, request_id: int) -> str:
    return json.dumps({"id": request_id, "type": "subscribe", "data": {"group": group}})


def dcrf_subscribe(pk: int, request_id: int) -> str:
    return json.dumps({"action": "subscribe_item", "request_id": request_id, "pk": pk})
