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
from .writer import json_encode_calls

ROUTES = {
    "floor": "ws/bare/",
    "signals": "ws/signals/",
    "rohrpost": "ws/rohrpost/",
    "dcrf": "ws/dcrf/",
    "jsonrpc": "ws/jsonrpc/",  # benchmarks.jsonrpc
}
LIVE_VARIANTS = ("floor", "signals", "rohrpost", "dcrf")


@dataclass
class LiveConfig:
    clients: int = 1000
    latency_updates: int = 2000
    rounds: int = 10  # variants take turns this many times in each measurement
    fanout_reps: int = 20
    sustained_updates: tuple[int, int, int] = (1000, 200, 40)  # for slots a, b, c
    window: int = 20
    profile_saves: int = 20

    def slot_sizes(self) -> dict[str, int]:
        return {"a": 1, "b": min(100, max(1, self.clients // 4)), "c": self.clients}


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
    """``benchmarks.serve`` in a child process; its output goes to a log file."""

    def __init__(self, env: dict[str, str], log: Path, profile_base: str | None = None) -> None:
        self.port = free_port()
        self.log = log
        self.profile_base = profile_base
        self.dumps = 0
        args = [sys.executable, "-m", "benchmarks.serve", str(self.port)]
        if profile_base:
            args.append(profile_base)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the benchmark server exited at start-up; see {self.log}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError("the benchmark server did not start")

    def url(self, variant: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{ROUTES[variant]}"

    def start_profile(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    async def stop_profile(self) -> pstats.Stats:
        self.proc.send_signal(signal.SIGUSR2)
        path = Path(f"{self.profile_base}.{self.dumps}.prof")
        self.dumps += 1
        for _ in range(600):
            if await asyncio.to_thread(path.exists):
                return pstats.Stats(str(path))
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the server wrote no profile {path}")

    def stop(self) -> None:
        # No graceful shutdown: uvicorn would wait for channels-redis receive
        # loops that block for seconds, and there is nothing left to save.
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
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
        if self.proc.returncode is not None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"cmd": "quit"}\n')
        await self.proc.stdin.drain()
        await asyncio.wait_for(self.proc.wait(), 60)


def rotated(items: tuple[str, ...], turn: int) -> list[str]:
    shift = turn % len(items)
    return list(items[shift:] + items[:shift])


class LiveRun:
    def __init__(
        self, config: LiveConfig, env: dict[str, str], workdir: Path, log: Any = print
    ) -> None:
        self.config = config
        self.env = env
        self.workdir = workdir
        self.k = 1_000_000  # update numbers, unique over the whole run
        self.writer = WriterProcess()
        self.log = log
        self.tally = Tally()

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

    async def connect(self, server: Server, variant: str, count: int, offset: int = 0) -> Swarm:
        swarm = Swarm(server.url(variant), self.tally)
        await swarm.open(count, lambda i: self.frames_for(variant, offset + i))
        return swarm

    async def run(self) -> dict[str, Any]:
        info = await self.writer.start(self.env)
        self.pks, self.groups = info["pks"], info["groups"]
        results: dict[str, Any] = {"config": self.config.__dict__}
        try:
            self.log("memory: one fresh server per variant, side by side")
            results["memory"] = await self.memory_all()
            self.log("latency, fan-out, sustained rate, profile: one server, variants take turns")
            results.update(await self.shared_server())
        finally:
            await self.writer.stop()
        return results

    async def memory_all(self) -> dict[str, Any]:
        # Resident memory is not a timing: the four servers may share the CPUs.
        servers = {
            v: Server(self.env, self.workdir / f"server-memory-{v}.log") for v in LIVE_VARIANTS
        }
        try:
            measured = await asyncio.gather(*(self.memory(v, servers[v]) for v in LIVE_VARIANTS))
            # Stop the servers only once every socket left its groups: a member
            # left behind would cost every later group_send of the run.
            left = await self.group_members()
            if left:
                self.log(f"  warning: {left} group memberships left behind")
        finally:
            for server in servers.values():
                server.stop()
        return dict(zip(LIVE_VARIANTS, measured, strict=True))

    async def group_members(self, timeout: float = 20) -> int:
        """Wait until this run's groups are empty; returns how many members are left."""
        from redis import asyncio as aioredis

        client = aioredis.Redis.from_url(self.env["BENCH_REDIS_URL"])
        pattern = f"{self.env['BENCH_PREFIX']}:group:*"
        end = time.monotonic() + timeout
        try:
            while True:
                members = 0
                async for key in client.scan_iter(match=pattern, count=1000):
                    members += await client.zcard(key)
                if members == 0 or time.monotonic() > end:
                    return members
                await asyncio.sleep(0.2)
        finally:
            await client.aclose()

    async def memory(self, variant: str, server: Server) -> dict[str, Any]:
        config = self.config
        await server.ready()
        # The first connections import and cache things once per process.
        warm = await self.connect(server, variant, 10, offset=config.clients)
        await warm.close()
        await asyncio.sleep(0.5)
        before = rss_kib(server.proc.pid)
        started = time.monotonic()
        swarm = await self.connect(server, variant, config.clients)
        seconds = time.monotonic() - started
        await asyncio.sleep(1.0)
        after = rss_kib(server.proc.pid)
        await swarm.close()
        per_1000 = (after - before) * 1000 / config.clients
        self.log(
            f"  {variant}: {config.clients} clients in {seconds:.1f} s; server RSS "
            f"{before / 1024:.1f} -> {after / 1024:.1f} MiB ({per_1000 / 1024:.1f} MiB per 1,000)"
        )
        return {
            "rss_before_kib": before,
            "rss_after_kib": after,
            "clients": config.clients,
            "kib_per_1000": per_1000,
            "connect_seconds": seconds,
        }

    async def shared_server(self) -> dict[str, Any]:
        config = self.config
        server = Server(
            self.env,
            self.workdir / "server-shared.log",
            profile_base=str(self.workdir / "server-profile"),
        )
        swarms = []
        try:
            await server.ready()
            for variant in LIVE_VARIANTS:
                swarms.append(await self.connect(server, variant, config.clients))
            await asyncio.sleep(1.0)
            results = {
                "latency": await self.latency(),
                "breakdown": await self.breakdown(),
                "fanout": await self.fanout(),
                "sustained": await self.sustained(),
                "profile": await self.profile(server),
            }
            for swarm in swarms:
                await swarm.close()
            return results
        finally:
            server.stop()

    async def latency(self) -> dict[str, Any]:
        """One update at a time, the next once the previous arrived: no queue builds up."""
        config = self.config
        per_round = max(1, config.latency_updates // config.rounds)
        out = {v: {"from_return_us": [], "from_call_us": [], "lost": 0} for v in LIVE_VARIANTS}
        for variant in LIVE_VARIANTS:  # warm-up, not recorded
            for _ in range(10):
                await self.one(variant, "a", 1)
        for turn in range(config.rounds):
            for variant in rotated(LIVE_VARIANTS, turn):
                row = out[variant]
                for _ in range(per_round):
                    k, t_call, t_return = await self.one(variant, "a", 1)
                    arrived = self.tally.first.get(k)
                    if arrived is None:
                        row["lost"] += 1
                        continue
                    row["from_return_us"].append((arrived - t_return) / 1000)
                    row["from_call_us"].append((arrived - t_call) / 1000)
        for variant, row in out.items():
            self.log(
                f"  {variant}: latency p50 {median(row['from_return_us']):,.0f} us after save() "
                f"returned, {median(row['from_call_us']):,.0f} us after it was called, "
                f"lost {row['lost']}"
            )
        return out

    async def one(self, variant: str, slot: str, size: int) -> tuple[int, int, int]:
        """Save once and wait until ``size`` clients have it; (k, t_call, t_return)."""
        k = self.next_k()
        _, t_call, t_return = await self.writer.call(cmd="save", variant=variant, slot=slot, k=k)
        await self.tally.wait(k, size, 10)
        return k, t_call, t_return

    async def breakdown(self) -> dict[str, Any]:
        """Where rohrpost_signals' extra latency goes, step by step, in the writer."""
        count = max(20, self.config.latency_updates // 10)
        result: dict[str, Any] = await self.writer.call(
            cmd="breakdown",
            slot="a",
            start=self.next_k(count),
            count=count,
            interval_us=2000,
        )
        self.log(
            "  rohrpost_signals in the writer (median us): "
            + ", ".join(f"{k} {v:,.0f}" for k, v in result.items())
        )
        await self.tally.quiet(0.3, 10)
        return result

    async def paced(self, variant: str, slot: str, count: int, interval_us: int) -> Any:
        return await self.writer.call(
            cmd="paced",
            variant=variant,
            slot=slot,
            start=self.next_k(count),
            count=count,
            interval_us=interval_us,
        )

    async def fanout(self) -> dict[str, Any]:
        sizes = self.config.slot_sizes()
        out = {
            v: {
                s: {"clients": n, "last_us": [], "first_us": [], "lost": 0}
                for s, n in sizes.items()
            }
            for v in LIVE_VARIANTS
        }
        for turn in range(self.config.fanout_reps):
            for variant in rotated(LIVE_VARIANTS, turn):
                for slot, size in sizes.items():
                    k = self.next_k()
                    _, t_call, _t_return = await self.writer.call(
                        cmd="save", variant=variant, slot=slot, k=k
                    )
                    row = out[variant][slot]
                    if not await self.tally.wait(k, size, 10):
                        row["lost"] += size - self.tally.count[k]
                        continue
                    # From the call: rohrpost and DCRF send before save() returns.
                    row["last_us"].append((self.tally.last[k] - t_call) / 1000)
                    row["first_us"].append((self.tally.first[k] - t_call) / 1000)
                    # Let the server finish what it does after the last send
                    # before the next measurement starts.
                    await asyncio.sleep(min(1.0, max(0.02, row["last_us"][-1] / 1e6)))
        for variant in LIVE_VARIANTS:
            parts = ", ".join(
                f"{row['clients']}: {median(row['last_us']) / 1000:.1f} ms"
                for row in out[variant].values()
            )
            self.log(f"  {variant}: fan-out, time until the last client has it: {parts}")
        return out

    async def sustained(self) -> dict[str, Any]:
        config = self.config
        sizes = self.config.slot_sizes()
        rounds = 2
        out = {
            v: {
                s: {"clients": n, "updates": 0, "messages": 0, "seconds": 0.0}
                for s, n in sizes.items()
            }
            for v in LIVE_VARIANTS
        }
        for turn in range(rounds):
            for variant in rotated(LIVE_VARIANTS, turn):
                for (slot, size), total in zip(
                    sizes.items(), config.sustained_updates, strict=True
                ):
                    updates, messages, seconds = await self.stream(
                        variant, slot, size, max(1, total // rounds)
                    )
                    row = out[variant][slot]
                    row["updates"] += updates
                    row["messages"] += messages
                    row["seconds"] += seconds
        for variant in LIVE_VARIANTS:
            for row in out[variant].values():
                row["lost"] = row["updates"] * row["clients"] - row["messages"]
                row["per_second"] = row["messages"] / max(row["seconds"], 1e-9)
            parts = ", ".join(
                f"{row['clients']}: {row['per_second']:,.0f}/s (lost {row['lost']})"
                for row in out[variant].values()
            )
            self.log(f"  {variant}: sustained messages per second: {parts}")
        return out

    async def stream(
        self, variant: str, slot: str, size: int, total: int
    ) -> tuple[int, int, float]:
        """``total`` updates with at most ``window`` undelivered; (updates, messages, seconds)."""
        window = self.config.window
        batch = max(1, window // 2)
        inflight: deque[int] = deque()
        ks: list[int] = []
        t_first = 0
        while len(ks) < total:
            while len(inflight) > window - batch:
                await self.tally.wait(inflight.popleft(), size, 10)
            stamps = await self.paced(variant, slot, min(batch, total - len(ks)), 0)
            t_first = t_first or stamps[0][1]
            for k, _, _ in stamps:
                inflight.append(k)
                ks.append(k)
        while inflight:
            await self.tally.wait(inflight.popleft(), size, 10)
        received = sum(self.tally.count[k] for k in ks)
        t_last = max((self.tally.last[k] for k in ks if k in self.tally.last), default=t_first)
        await asyncio.sleep(0.05)
        return total, received, max(1e-9, (t_last - t_first) / 1e9)

    async def profile(self, server: Server) -> dict[str, Any]:
        """Profile the server's event loop while it fans out; count its JSON encodes."""
        out: dict[str, Any] = {}
        sizes = self.config.slot_sizes()
        for variant in LIVE_VARIANTS:
            out[variant] = {}
            for slot in ("a", "c"):
                size, count = sizes[slot], self.config.profile_saves
                server.start_profile()
                await asyncio.sleep(0.2)
                start = self.next_k(count)
                writer_side = await self.writer.call(
                    cmd="profile", variant=variant, slot=slot, start=start, count=count
                )
                for k in range(start, start + count):
                    await self.tally.wait(k, size, 60)
                stats = await server.stop_profile()
                encodes = json_encode_calls(stats)
                out[variant][slot] = {
                    "clients": size,
                    "saves": count,
                    "server_json_encodes": encodes,
                    "writer_json_encodes": None
                    if variant == "floor"
                    else writer_side["json_encodes"],
                    "top": top_functions(stats, 10),
                }
                self.log(
                    f"  {variant}: {count} updates to {size} clients: {encodes} JSON encodes "
                    f"in the server, {out[variant][slot]['writer_json_encodes']} in the writer"
                )
        return out


def top_functions(stats: pstats.Stats, limit: int) -> list[dict[str, Any]]:
    rows = []
    total = stats.total_tt or 1.0  # type: ignore[attr-defined]
    for (filename, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        _cc, ncalls, tottime, _cumtime, _callers = row
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
