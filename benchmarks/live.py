"""Measurements 2-4 (and the server profile) against a real uvicorn server through Redis.

For each variant a fresh server starts, ``clients`` WebSocket clients
connect and subscribe (client 0 to slot ``a``, clients 0-99 to slot ``b``,
all of them to slot ``c``), and a separate writer process saves rows:

2. latency: paced updates of slot ``a`` (one subscriber), from ``save()``
   returning (and from ``save()`` being called) to the text arriving;
3. fan-out: one update of slot ``a``/``b``/``c`` at a time, time until the
   last subscriber has it; then a windowed stream of updates to measure the
   messages per second the server sustains, counting anything lost;
4. memory: the server's resident memory before and after the clients
   connected and subscribed.

The floor is the bare consumer fed by a bare ``group_send`` of pre-encoded
text, through the same Redis layer and the same server.
"""

from __future__ import annotations

import asyncio
import json
import os
import pstats
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .stats import median
from .swarm import Swarm, Tally, dcrf_subscribe, rohrpost_subscribe
from .writer import SLOTS, json_encode_calls

ROUTES = {"floor": "ws/bare/", "signals": "ws/signals/", "rohrpost": "ws/rohrpost/", "dcrf": "ws/dcrf/"}
LIVE_VARIANTS = ("floor", "signals", "rohrpost", "dcrf")


@dataclass
class LiveConfig:
    clients: int = 1000
    latency_updates: int = 2000
    latency_interval_us: int = 3000
    fanout_reps: int = 20
    sustained_updates: tuple[int, int, int] = (1000, 200, 40)  # for slots a, b, c
    window: int = 20
    profile_saves: int = 20

    def slot_sizes(self) -> dict[str, int]:
        return {"a": 1, "b": min(100, self.clients), "c": self.clients}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self, env: dict[str, str], profile_base: str | None = None) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "benchmarks.serve", str(self.port)]
        if profile_base:
            args.append(profile_base)
        self.proc = subprocess.Popen(args, env=env)

    async def ready(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("the benchmark server exited at start-up")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError("the benchmark server did not start")

    def url(self, variant: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{ROUTES[variant]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class WriterProcess:
    async def start(self, env: dict[str, str]) -> dict[str, Any]:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.writer",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        info: dict[str, Any] = await self._read()
        return info

    async def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the writer process exited")
        return json.loads(line)

    async def call(self, **command: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def stop(self) -> None:
        await self.call(cmd="flush")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"cmd": "quit"}\n')
        await self.proc.stdin.drain()
        await asyncio.wait_for(self.proc.wait(), 30)


class LiveRun:
    def __init__(self, config: LiveConfig, env: dict[str, str], workdir: Path) -> None:
        self.config = config
        self.env = env
        self.workdir = workdir
        self.k = 1_000_000  # update numbers, unique over the whole run
        self.writer = WriterProcess()
        self.log = print

    def next_k(self, count: int = 1) -> int:
        start = self.k
        self.k += count
        return start

    def frames_for(self, variant: str, index: int) -> list[str]:
        sizes = self.config.slot_sizes()
        slots = [s for s in ("c", "b", "a") if index < sizes[s]]
        if variant == "dcrf":
            return [dcrf_subscribe(self.pks["dcrf"][s], n) for n, s in enumerate(slots, 1)]
        return [rohrpost_subscribe(self.groups[variant][s], n) for n, s in enumerate(slots, 1)]

    async def run(self) -> dict[str, Any]:
        info = await self.writer.start(self.env)
        self.pks, self.groups = info["pks"], info["groups"]
        results: dict[str, Any] = {}
        try:
            for variant in LIVE_VARIANTS:
                results[variant] = await self.measure(variant)
            results["profile"] = {}
            for variant in LIVE_VARIANTS:
                results["profile"][variant] = await self.profile(variant)
        finally:
            await self.writer.stop()
        return results

    async def connect(self, server: Server, variant: str, tally: Tally) -> Swarm:
        swarm = Swarm(server.url(variant), tally)
        await swarm.open(self.config.clients, lambda i: self.frames_for(variant, i))
        return swarm

    async def measure(self, variant: str) -> dict[str, Any]:
        config = self.config
        server = Server(self.env)
        try:
            await server.ready()
            tally = Tally()
            # Warm up: the first connections import and cache things once per process.
            warm = Swarm(server.url(variant), tally)
            await warm.open(10, lambda i: self.frames_for(variant, config.clients + i))
            await warm.close()
            await asyncio.sleep(0.5)
            rss_before = rss_kib(server.proc.pid)
            started = time.monotonic()
            swarm = await self.connect(server, variant, tally)
            connect_seconds = time.monotonic() - started
            await asyncio.sleep(1.0)
            rss_after = rss_kib(server.proc.pid)
            self.log(
                f"  {variant}: {config.clients} clients connected in {connect_seconds:.1f} s, "
                f"server RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB"
            )
            result: dict[str, Any] = {
                "memory": {
                    "rss_before_kib": rss_before,
                    "rss_after_kib": rss_after,
                    "clients": config.clients,
                    "kib_per_1000": (rss_after - rss_before) * 1000 / config.clients,
                },
                "connect_seconds": connect_seconds,
            }
            result["latency"] = await self.latency(variant, tally)
            result["fanout"] = await self.fanout(variant, tally)
            result["sustained"] = await self.sustained(variant, tally)
            await swarm.close()
            return result
        finally:
            server.stop()

    async def latency(self, variant: str, tally: Tally) -> dict[str, Any]:
        config = self.config
        warmup = await self.writer.call(
            cmd="paced",
            variant=variant,
            slot="a",
            start=self.next_k(50),
            count=50,
            interval_us=config.latency_interval_us,
        )
        stamps = await self.writer.call(
            cmd="paced",
            variant=variant,
            slot="a",
            start=self.next_k(config.latency_updates),
            count=config.latency_updates,
            interval_us=config.latency_interval_us,
        )
        await tally.wait(stamps[-1][0], 1, 10)
        await tally.quiet(0.3, 10)
        del warmup
        from_return, from_call, lost = [], [], 0
        for k, t_call, t_return in stamps:
            arrived = tally.first.get(k)
            if arrived is None:
                lost += 1
                continue
            from_return.append((arrived - t_return) / 1000)
            from_call.append((arrived - t_call) / 1000)
        self.log(
            f"  {variant}: latency p50 {median(from_return):.0f} us from return, "
            f"{median(from_call):.0f} us from call, lost {lost}"
        )
        return {"from_return_us": from_return, "from_call_us": from_call, "lost": lost}

    async def fanout(self, variant: str, tally: Tally) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for slot, size in self.config.slot_sizes().items():
            last, first, lost = [], [], 0
            for _ in range(self.config.fanout_reps):
                k = self.next_k()
                _, t_call, t_return = await self.writer.call(
                    cmd="save", variant=variant, slot=slot, k=k
                )
                if not await tally.wait(k, size, 30):
                    lost += size - tally.count[k]
                    continue
                last.append((tally.last[k] - t_return) / 1000)
                first.append((tally.first[k] - t_return) / 1000)
                await asyncio.sleep(0.02)
            out[str(size)] = {"last_us": last, "first_us": first, "lost": lost}
            self.log(f"  {variant}: fan-out to {size}: median {median(last):.0f} us, lost {lost}")
        return out

    async def sustained(self, variant: str, tally: Tally) -> dict[str, Any]:
        out: dict[str, Any] = {}
        window = self.config.window
        batch = max(1, window // 2)
        for (slot, size), total in zip(
            self.config.slot_sizes().items(), self.config.sustained_updates, strict=True
        ):
            inflight: deque[int] = deque()
            issued = 0
            ks: list[int] = []
            t_first = 0
            while issued < total:
                while len(inflight) > window - batch:
                    await tally.wait(inflight.popleft(), size, 10)
                count = min(batch, total - issued)
                stamps = await self.writer.call(
                    cmd="paced",
                    variant=variant,
                    slot=slot,
                    start=self.next_k(count),
                    count=count,
                    interval_us=0,
                )
                if not t_first:
                    t_first = stamps[0][1]
                for k, _, _ in stamps:
                    inflight.append(k)
                    ks.append(k)
                issued += count
            while inflight:
                await tally.wait(inflight.popleft(), size, 10)
            received = sum(tally.count[k] for k in ks)
            t_last = max((tally.last[k] for k in ks if k in tally.last), default=t_first)
            seconds = max(1e-9, (t_last - t_first) / 1e9)
            out[str(size)] = {
                "updates": total,
                "messages": received,
                "lost": total * size - received,
                "seconds": seconds,
                "per_second": received / seconds,
            }
            self.log(
                f"  {variant}: sustained to {size}: {received / seconds:,.0f} msg/s, "
                f"lost {total * size - received}"
            )
        return out

    async def profile(self, variant: str) -> dict[str, Any]:
        """Profile the server's loop while it fans out; count JSON encodes."""
        base = str(self.workdir / f"server-{variant}")
        server = Server(self.env, profile_base=base)
        out: dict[str, Any] = {}
        try:
            await server.ready()
            tally = Tally()
            swarm = await self.connect(server, variant, tally)
            dumps = 0
            for slot, size in self.config.slot_sizes().items():
                if slot == "b":
                    continue
                count = self.config.profile_saves
                server.proc.send_signal(signal.SIGUSR1)
                await asyncio.sleep(0.2)
                start = self.next_k(count)
                writer_side = await self.writer.call(
                    cmd="profile", variant=variant, slot=slot, start=start, count=count
                )
                for k in range(start, start + count):
                    await tally.wait(k, size, 60)
                server.proc.send_signal(signal.SIGUSR2)
                path = Path(f"{base}.{dumps}.prof")
                dumps += 1
                for _ in range(200):
                    if path.exists():
                        break
                    await asyncio.sleep(0.05)
                stats = pstats.Stats(str(path))
                out[str(size)] = {
                    "saves": count,
                    "server_json_encodes": json_encode_calls(stats),
                    "writer_json_encodes": None if variant == "floor" else writer_side["json_encodes"],
                    "top": top_functions(stats, 8),
                    "profile_file": path.name,
                }
                self.log(
                    f"  {variant}: profile at {size} clients: "
                    f"{out[str(size)]['server_json_encodes']} JSON encodes in the server "
                    f"for {count} updates"
                )
            await swarm.close()
        finally:
            server.stop()
        return out


def top_functions(stats: pstats.Stats, limit: int) -> list[dict[str, Any]]:
    rows = []
    total = stats.total_tt or 1.0  # type: ignore[attr-defined]
    for (filename, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        _cc, ncalls, tottime, cumtime, _callers = row
        rows.append(
            {
                "function": f"{short_path(filename)}:{line}({name})",
                "calls": ncalls,
                "tottime_share": tottime / total,
            }
        )
    rows.sort(key=lambda r: r["tottime_share"], reverse=True)
    return rows[:limit]


REPO = str(Path(__file__).resolve().parents[1]) + os.sep


def short_path(filename: str) -> str:
    """``django/db/...`` instead of the full site-packages path."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    if filename.startswith(REPO):
        return filename[len(REPO) :]
    if "/lib/python3" in filename:
        return filename.split("/lib/python3", 1)[1].split("/", 1)[1]
    return filename
