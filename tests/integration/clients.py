"""Many WebSocket clients in one asyncio process, and what they must have received."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import socket
import struct
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

RECONNECT_DELAY = 0.2


@dataclass(frozen=True)
class Update:
    group: str
    object_id: int
    value: str
    seq: int | None
    received_at: float


def value_of(obj: dict[str, Any]) -> str:
    """What a write set: an order's status or a product's name."""
    return str(obj.get("status", obj.get("name")))


@dataclass
class Client:
    """A browser stand-in: joins ``groups`` on one worker and records every update.

    With ``reconnect`` it connects again whenever the socket closes (as
    rohrpost.js users do) and subscribes to its groups again.
    """

    name: str
    port: int
    cookie: str
    groups: list[str]
    reconnect: bool = False
    updates: list[Update] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Other frames nobody asked for (``send_to_group`` news), with their arrival time.
    others: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    connects: int = 0
    closes: int = 0
    #: The close code of each connection that ended (1006: no close frame came).
    close_codes: list[int | None] = field(default_factory=list)
    ws: ClientConnection | None = None
    _replies: dict[Any, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _next_id: int = 0
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/rohrpost/"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def ready(self, timeout: float = 60) -> None:
        """Wait until the client is connected and subscribed to all its groups."""
        waiter = asyncio.ensure_future(self._ready.wait())
        assert self._task is not None
        done, _ = await asyncio.wait(
            {waiter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            if self._task in done:
                self._task.result()  # raises what ended the client
            raise AssertionError(f"client {self.name} not subscribed after {timeout} s")

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                self.ws = await connect(
                    self.url,
                    origin=f"http://127.0.0.1:{self.port}",  # type: ignore[arg-type]
                    additional_headers={"Cookie": self.cookie},
                    compression=None,
                    proxy=None,
                    max_size=None,
                    max_queue=None,
                    open_timeout=30,
                )
            except (OSError, InvalidHandshake, InvalidStatus, asyncio.TimeoutError):
                if not self.reconnect:
                    raise
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            self.connects += 1
            reader = asyncio.ensure_future(self._read(self.ws))
            try:
                for group in self.groups:
                    reply = await self.request("subscribe", {"group": group})
                    assert reply.get("data", {}).get("group") == group, reply
                self._ready.set()
                await reader
            except ConnectionClosed:
                pass
            finally:
                reader.cancel()
                if not self._stopping:
                    self.close_codes.append(self.ws.close_code)
                self._ready.clear()
                for future in self._replies.values():
                    future.cancel()
                self._replies.clear()
            self.closes += 1
            if not self.reconnect:
                return
            await asyncio.sleep(RECONNECT_DELAY)

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            if message.get("type") == "subscription-update":
                data = message["data"]
                obj = data["object"]
                self.updates.append(
                    Update(data["group"], obj["id"], value_of(obj), data.get("seq"), now)
                )
                continue
            future = self._replies.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)
            elif "error" in message:
                self.errors.append(message)
            else:
                self.others.append((message, now))

    async def request(self, kind: str, data: Any, timeout: float = 30) -> dict[str, Any]:
        assert self.ws is not None
        self._next_id += 1
        message_id = f"{self.name}-{self._next_id}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[message_id] = future
        await self.ws.send(json.dumps({"id": message_id, "type": kind, "data": data}))
        return await asyncio.wait_for(future, timeout)

    async def close(self) -> None:
        self._stopping = True
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                await self._task

    def values(self, group: str) -> list[str]:
        return [u.value for u in self.updates if u.group == group]


async def start_all(clients: Iterable[Client], batch: int = 50, timeout: float = 120) -> None:
    """Connect and subscribe every client, ``batch`` at a time (listen backlogs are small)."""
    pending = list(clients)
    for start in range(0, len(pending), batch):
        chunk = pending[start : start + batch]
        for client in chunk:
            client.start()
        await asyncio.gather(*(client.ready(timeout) for client in chunk))


async def close_all(clients: Iterable[Client]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_for_deliveries(
    clients: list[Client], expected: dict[str, list[str]], timeout: float
) -> None:
    """Wait until the clients hold as many updates as ``expected`` promises them."""
    total = sum(len(expected.get(group, [])) for c in clients for group in c.groups)
    await wait_until(
        lambda: sum(len(c.updates) for c in clients) >= total, timeout, f"{total} deliveries"
    )


Write = tuple[str, int, str]  # (model, pk, value), as rps_writer takes them


def group_of(write: Write) -> str:
    model, pk, _value = write
    return f"{model}-{pk}"


def expected_by_group(writes: Iterable[Write]) -> dict[str, list[str]]:
    """Per group, the values its members must receive, in commit order."""
    expected: dict[str, list[str]] = {}
    for write in writes:
        expected.setdefault(group_of(write), []).append(write[2])
    return expected


@dataclass
class Delivery:
    """Expected against received, summed over clients."""

    expected: int = 0
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    out_of_order: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def perfect(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected or self.out_of_order)

    def add(self, client: Client, group: str, want: list[str], got: list[str]) -> None:
        self.expected += len(want)
        self.received += len(got)
        want_count, got_count = Counter(want), Counter(got)
        lost = sum((want_count - got_count).values())
        extra = got_count - want_count
        duplicated = sum(n for value, n in extra.items() if value in want_count)
        unexpected = sum(n for value, n in extra.items() if value not in want_count)
        disordered = not (lost or duplicated or unexpected) and got != want
        self.lost += lost
        self.duplicated += duplicated
        self.unexpected += unexpected
        self.out_of_order += int(disordered)
        if (lost or extra or disordered) and len(self.examples) < 10:
            self.examples.append(
                f"{client.name} {group}: lost {lost}, duplicated {duplicated}, "
                f"unexpected {unexpected}, in order {not disordered}; "
                f"want {want[:8]}..., got {got[:8]}..."
            )


def check_delivery(
    clients: Iterable[Client],
    expected: dict[str, list[str]],
    received: Callable[[Client, str], list[str]] | None = None,
) -> Delivery:
    """Compare, per client and group, the values received with ``expected``."""
    delivery = Delivery()
    for client in clients:
        for group in client.groups:
            got = received(client, group) if received else client.values(group)
            delivery.add(client, group, expected.get(group, []), got)
    return delivery


#: The value :func:`settle` saves; no test writes it otherwise.
MARKER = "settle-marker"


async def settle(writer: Any, clients: list[Client], timeout: float = 60) -> None:
    """Show that nothing more is on its way to ``clients``, without sleeping.

    Saves a marker into every group they hold and waits until each client has
    it: a group's messages reach a socket in order, so a duplicate or a stray
    message would have come before the marker. The markers are then removed
    from the clients' records, which hold exactly what came before them.
    """
    groups = sorted({group for client in clients for group in client.groups})
    writes: list[Write] = []
    for group in groups:
        model, _, pk = group.rpartition("-")
        if not (model and pk.isdigit()):
            raise ValueError(f"settle() needs <model>-<pk> groups, not {group!r}")
        writes.append((model, int(pk), MARKER))
    await asyncio.to_thread(writer.save, writes)

    def marked() -> bool:
        return all(MARKER in client.values(group) for client in clients for group in client.groups)

    await wait_until(marked, timeout, "the settle markers")
    for client in clients:
        for group in client.groups:
            assert client.values(group).count(MARKER) == 1, (client.name, group)
        client.updates = [u for u in client.updates if u.value != MARKER]


def latencies(clients: Iterable[Client], saved_at: dict[tuple[str, str], float]) -> list[float]:
    """Seconds from save() returning in the writer to the text arriving, per delivery."""
    found = []
    for client in clients:
        for update in client.updates:
            saved = saved_at.get((update.group, update.value))
            if saved is not None:
                found.append(update.received_at - saved)
    return sorted(found)


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


class SilentClient:
    """A client that subscribes and then never reads: a stalled browser tab.

    Plain sockets with a small receive buffer, so the server's writes back
    up as soon as possible.
    """

    def __init__(self, port: int, cookie: str, groups: list[str]) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /ws/rohrpost/ HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: http://127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(1)
            assert chunk, "server closed the silent client's handshake"
            response += chunk
        assert response.startswith(b"HTTP/1.1 101"), response
        for n, group in enumerate(groups):
            self.send(json.dumps({"id": n, "type": "subscribe", "data": {"group": group}}))
        # From here on it never reads again.

    def send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def backlog(self, server_port: int) -> int:
        """Bytes the server wrote to this socket that sit unread in kernel buffers."""
        local_port = self.sock.getsockname()[1]
        total = 0
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            tx_queue, rx_queue = (int(q, 16) for q in queues.split(":"))
            ports = (int(local.split(":")[1], 16), int(remote.split(":")[1], 16))
            if ports == (server_port, local_port):
                total += tx_queue  # the server's side: sent, not yet acknowledged
            elif ports == (local_port, server_port):
                total += rx_queue  # ours: received, not read
        return total

    def close(self) -> None:
        self.sock.close()


def post_status(port: int, cookie: str, pk: int, status: str, fail: bool = False) -> int:
    """Set an order's status through a web request to one worker; the HTTP status."""
    token = "integrationcsrftoken0123456789ab"  # double-submit: cookie and header agree
    form = {"status": status, **({"fail": "1"} if fail else {})}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            f"/shop/orders/{pk}/status/",
            body=urllib.parse.urlencode(form),
            headers={
                "Cookie": f"{cookie}; csrftoken={token}",
                "X-CSRFToken": token,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()
