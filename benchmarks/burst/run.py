"""Run one burst: servers, writer, clients; count what each client got."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clients import Client, close_all, start_all

ROOT = Path(__file__).resolve().parents[2]
#: Where losing messages is allowed (bare Channels, a restored Redis): with
#: nothing arriving for this long, what has not arrived counts as lost.
QUIET_SECONDS = 15.0
#: Where it is not: how long to wait for every group's newest message. Only a
#: run that would hang reaches it; a loaded machine just takes longer.
DELIVERY_DEADLINE_SECONDS = float(os.environ.get("RPS_BURST_DEADLINE", "420"))


@dataclass
class BurstConfig:
    layer: str  # core-defaults | core-documented | pubsub | memory
    variant: str = "library"  # library | floor
    server: str = "uvicorn"  # uvicorn | daphne
    clients: int = 200
    updates: int = 400
    redis_urls: list[str] = field(default_factory=lambda: ["redis://127.0.0.1:6379/0"])

    @property
    def workers(self) -> int:
        return 1 if self.layer == "memory" else 2  # the in-memory layer is one process


@dataclass
class BurstResult:
    config: BurstConfig
    expected: int = 0
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0  # groups of a client whose frames were not in order
    resyncs: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    drain_s: float = 0.0
    examples: list[str] = field(default_factory=list)
    server_log: str = ""

    def percentile(self, fraction: float) -> float:
        values = sorted(self.latencies_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Burst:
    def __init__(self, config: BurstConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.prefix = f"rps-burst-{uuid.uuid4().hex[:8]}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RPS_"))},
            "DJANGO_SETTINGS_MODULE": "benchmarks.burst.settings",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "BURST_LAYER": config.layer,
            "BURST_REDIS": ",".join(config.redis_urls),
            "BURST_PREFIX": self.prefix,
            "BURST_DB": str(workdir / f"{self.prefix}.sqlite3"),
        }
        self.processes: list[subprocess.Popen[Any]] = []
        self.writer: subprocess.Popen[Any] | None = None
        self.pks: list[int] = []
        self.clients: list[Client] = []
        self.saved: list[int] = []
        self.ports: list[int] = []
        self.logs: list[Path] = []

    def spawn(self, command: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[Any]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stderr=out, start_new_session=True, **kwargs
            )
        self.processes.append(process)
        return process

    def start_servers(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        app = "benchmarks.burst.asgi:application"
        for n in range(self.config.workers):
            port = free_port()
            if self.config.server == "daphne":
                command = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
            else:
                command = ["-m", "uvicorn", app, "--port", str(port), "--no-access-log"]
                command += ["--log-level", "warning"]
            log = self.workdir / f"{self.prefix}-server-{n}.log"
            self.logs.append(log)
            self.spawn([sys.executable, *command], log, stdout=subprocess.DEVNULL)
            self.ports.append(port)
        deadline = time.monotonic() + 60
        while not all(port_open(p) for p in self.ports):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise RuntimeError("burst servers did not start:\n" + self.server_log())
            time.sleep(0.1)

    def server_log(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def http(self, method: str, path: str, body: Any = None) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[0], timeout=600)
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, path, body=payload)
            response = connection.getresponse()
            return json.loads(response.read())
        finally:
            connection.close()

    def stop(self) -> None:
        if self.writer is not None and self.writer.stdin is not None:
            self.writer.stdin.close()
        for process in self.processes:
            stop(process)
        if self.config.layer != "memory":
            import redis

            for url in self.config.redis_urls:
                client = redis.Redis.from_url(url)
                try:
                    keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
                    for start in range(0, len(keys), 500):
                        client.delete(*keys[start : start + 500])
                except redis.RedisError:
                    pass
                finally:
                    client.close()

    async def prepare(self) -> None:
        """Servers, items, and every client connected and subscribed."""
        config = self.config
        await asyncio.to_thread(self.start_servers)
        if config.layer == "memory":
            answer = await asyncio.to_thread(
                self.http, "GET", f"/burst/setup/?count={config.clients}"
            )
        else:
            self.writer = self.spawn(
                [sys.executable, "-m", "benchmarks.burst.writer", str(config.clients)],
                self.workdir / f"{self.prefix}-writer.log",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.writer.stdout is not None
            answer = json.loads(await asyncio.to_thread(self.writer.stdout.readline))
        self.pks = answer["pks"]
        path = "/ws/floor/" if config.variant == "floor" else "/ws/rohrpost/"
        self.clients = [
            Client(self.ports[n % len(self.ports)], path, [f"item-{pk}", "items"])
            for n, pk in enumerate(self.pks)
        ]
        await start_all(self.clients)

    async def write(self, updates: int) -> list[int]:
        """One burst of ``updates`` writes (counters go on from the previous burst)."""
        command = {
            "variant": self.config.variant,
            "updates": updates,
            "pks": self.pks,
            "first": len(self.saved),
        }
        if self.writer is None:
            answer = await asyncio.to_thread(self.http, "POST", "/burst/run/", command)
        else:
            assert self.writer.stdin is not None
            assert self.writer.stdout is not None
            self.writer.stdin.write(json.dumps(command) + "\n")
            self.writer.stdin.flush()
            line = await asyncio.to_thread(self.writer.stdout.readline)
            if not line:
                raise RuntimeError("the writer died:\n" + self.server_log())
            answer = json.loads(line)
        saved: list[int] = answer["saved"]
        self.saved.extend(saved)
        return saved

    def expected(self) -> dict[str, list[int]]:
        """Per group, the counters its members must get, in order."""
        expected: dict[str, list[int]] = {f"item-{pk}": [] for pk in self.pks}
        for n in range(len(self.saved)):
            expected[f"item-{self.pks[n % len(self.pks)]}"].append(n + 1)
        expected["items"] = list(range(1, len(self.saved) + 1))
        return expected

    async def delivered(self, *, lossy: bool = False) -> None:
        """Wait until every client got the newest message of each of its groups.

        The library sends a group's messages in order, filling or resyncing
        any gap first, so the newest one arriving means nothing earlier is
        still on its way. ``lossy`` is for rounds that may lose messages for
        good (bare Channels, writes to a Redis that just restarted): they also
        end once nothing arrived for ``QUIET_SECONDS``.
        """
        newest = {group: counters[-1] for group, counters in self.expected().items() if counters}
        await wait_delivered(self.clients, newest, lossy=lossy)

    async def run(self) -> BurstResult:
        await self.prepare()
        try:
            await self.write(self.config.updates)
            await self.delivered(lossy=self.config.variant == "floor")
            return self.tally(self.clients, self.expected(), self.saved)
        finally:
            await self.close()

    async def close(self) -> None:
        await close_all(self.clients)

    def tally(
        self, clients: list[Client], expected: dict[str, list[int]], saved: list[int]
    ) -> BurstResult:
        result = BurstResult(self.config, server_log=self.server_log())
        last = 0
        for n, client in enumerate(clients):
            for group in client.groups:
                want = expected[group]
                frames = [(c, t) for g, c, t in client.frames if g == group]
                got = [c for c, _t in frames if c is not None]
                result.resyncs += sum(1 for c, _t in frames if c is None)
                result.expected += len(want)
                result.received += len(got)
                missing = sorted(set(want) - set(got))
                lost = len(missing)
                duplicated = len(got) - len(set(got))
                unique = list(dict.fromkeys(got))
                disordered = unique != sorted(unique)
                result.lost += lost
                result.duplicated += duplicated
                result.out_of_order += int(disordered)
                if (lost or duplicated or disordered) and len(result.examples) < 5:
                    which = f" ({missing[0]}..{missing[-1]})" if missing else ""
                    result.examples.append(
                        f"client {n} on port {client.port} {group}: lost {lost}{which} of "
                        f"{len(want)} (last received {got[-1] if got else None}), duplicated "
                        f"{duplicated}, in order {not disordered}"
                        + ("" if client.close_code is None else f", closed {client.close_code}")
                    )
                for counter, arrived in frames:
                    if counter is not None:
                        result.latencies_ms.append((arrived - saved[counter - 1]) / 1e6)
                        last = max(last, arrived)
        if saved and last:
            result.drain_s = (last - saved[0]) / 1e9
        return result


async def wait_delivered(clients: list[Client], newest: dict[str, int], *, lossy: bool) -> None:
    """Until each client has ``newest[group]`` for each of its groups (see ``Burst.delivered``)."""
    arrived = asyncio.Event()
    for client in clients:
        client.arrived = arrived
    waiting = [(c, g) for c in clients for g in c.groups if g in newest]
    deadline = time.monotonic() + DELIVERY_DEADLINE_SECONDS
    while True:
        arrived.clear()
        waiting = [(c, g) for c, g in waiting if c.newest.get(g, 0) < newest[g] and not c.ended]
        if not waiting:
            # All there: a little longer, so duplicates would show.
            await asyncio.sleep(0.5)
            return
        left = deadline - time.monotonic()
        if left <= 0:
            return  # the tally shows what is missing
        try:
            await asyncio.wait_for(arrived.wait(), QUIET_SECONDS if lossy else left)
        except asyncio.TimeoutError:  # not the builtin before Python 3.11
            if lossy:
                return


async def run_burst(config: BurstConfig, workdir: Path) -> BurstResult:
    burst = Burst(config, workdir)
    try:
        return await burst.run()
    finally:
        await asyncio.to_thread(burst.stop)
