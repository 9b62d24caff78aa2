"""JSON-RPC against the rohrpost consumer, in one run, on one server, through Redis.

``python -m benchmarks.jsonrpc [--quick]`` (from the repository root; needs
Redis at ``BENCH_REDIS_URL``, keys under a prefix unique to the run).

1. Call round trip: one client sends a request and waits for its reply,
   again and again; the variants take turns in chunks. Built-in ``ping``, a
   sync echo handler/method (worker thread) and an async one (event loop).
2. Update fan-out: 1,000 sockets of each protocol, each protocol's sockets in
   the group of its own row; one ``save()`` of a row at a time, time from the
   call until the last of its 1,000 sockets has the update. Then one row whose
   group holds 500 sockets of each protocol.

Both protocols run in the same uvicorn server (``benchmarks.asgi``, one
worker); the clients and the saves run in this process. Results go to
``benchmarks/results/jsonrpc-<mode>.txt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .live import Server
from .stats import median
from .swarm import Swarm, Tally

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

#: (variant, route, request text for call number n)
CALLS: dict[str, tuple[str, Any]] = {
    "rohrpost ping": ("signals", lambda n: f'{{"id":{n},"type":"ping"}}'),
    "JSON-RPC ping": ("jsonrpc", lambda n: f'{{"jsonrpc":"2.0","method":"ping","id":{n}}}'),
    "rohrpost sync echo": (
        "signals",
        lambda n: f'{{"id":{n},"type":"bench.echo","data":[1,"a"]}}',
    ),
    "JSON-RPC sync method": (
        "jsonrpc",
        lambda n: f'{{"jsonrpc":"2.0","method":"bench.echo","params":[[1,"a"]],"id":{n}}}',
    ),
    "rohrpost async echo": (
        "signals",
        lambda n: f'{{"id":{n},"type":"bench.aecho","data":[1,"a"]}}',
    ),
    "JSON-RPC async method": (
        "jsonrpc",
        lambda n: f'{{"jsonrpc":"2.0","method":"bench.aecho","params":[[1,"a"]],"id":{n}}}',
    ),
}

PRESETS = {
    "quick": {"calls": 200, "chunk": 50, "clients": 100, "reps": 3},
    "full": {"calls": 2000, "chunk": 100, "clients": 1000, "reps": 20},
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def round_trips(server: Server, calls: int, chunk: int) -> dict[str, list[float]]:
    from websockets.asyncio.client import connect

    sockets = {}
    for name, (route, _build) in CALLS.items():
        sockets[name] = await connect(server.url(route), compression=None, ping_interval=None)
    timings: dict[str, list[float]] = {name: [] for name in CALLS}
    number = 0
    try:
        for _turn in range(calls // chunk):
            for name, (_route, build) in CALLS.items():
                ws = sockets[name]
                for _ in range(chunk):
                    number += 1
                    text = build(number)
                    start = time.perf_counter_ns()
                    await ws.send(text)
                    reply = json.loads(await ws.recv())
                    timings[name].append((time.perf_counter_ns() - start) / 1000)
                    if reply.get("id") != number or reply.get("error"):
                        raise RuntimeError(f"{name}: unexpected reply {reply!r}")
    finally:
        for ws in sockets.values():
            await ws.close()
    return timings


def rohrpost_subscribe(group: str) -> list[str]:
    return [json.dumps({"id": 1, "type": "subscribe", "data": {"group": group}})]


def jsonrpc_subscribe(group: str) -> list[str]:
    return [json.dumps({"jsonrpc": "2.0", "method": "subscribe", "params": [group], "id": 1})]


class FanOut:
    def __init__(self, server: Server, clients: int) -> None:
        from benchmarks.benchapp.models import SignalsItem

        self.server = server
        self.clients = clients
        self.tally = Tally()
        self.rows = {
            key: SignalsItem.objects.create(name=key) for key in ("rohrpost", "jsonrpc", "mixed")
        }
        self.k = 1_000_000

    def group(self, key: str) -> str:
        return f"signalsitem-{self.rows[key].pk}"

    async def open(self) -> list[Swarm]:
        half = self.clients // 2
        plan = [
            ("signals", self.clients, lambda i: rohrpost_subscribe(self.group("rohrpost"))),
            ("jsonrpc", self.clients, lambda i: jsonrpc_subscribe(self.group("jsonrpc"))),
            ("signals", half, lambda i: rohrpost_subscribe(self.group("mixed"))),
            ("jsonrpc", half, lambda i: jsonrpc_subscribe(self.group("mixed"))),
        ]
        swarms = []
        for route, count, frames in plan:
            swarm = Swarm(self.server.url(route), self.tally)
            await swarm.open(count, frames)
            swarms.append(swarm)
        return swarms

    async def one(self, key: str) -> float | None:
        """Save row ``key``; microseconds from the call until all its sockets have it."""
        from rohrpost_signals import dispatch

        self.k += 1
        k = self.k
        row = self.rows[key]
        row.counter = k

        def save() -> int:
            start = time.monotonic_ns()
            row.save()
            dispatch.flush(timeout=30)
            return start

        started = await asyncio.to_thread(save)
        if not await self.tally.wait(k, self.clients, 30):
            return None
        return (self.tally.last[k] - started) / 1000


def django_setup(workdir: Path, prefix: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_LAYER"] = "redis"
    os.environ["BENCH_PREFIX"] = prefix
    os.environ["BENCH_SQLITE_PATH"] = str(workdir / "jsonrpc.sqlite3")
    os.environ["BENCH_NO_REQUEST_LIMIT"] = "1"
    from . import djangoenv

    djangoenv.setup()


async def run(preset: dict[str, int], workdir: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    server = Server(env, workdir / "server.log")
    try:
        await server.ready()
        print("1. call round trip", flush=True)
        timings = await round_trips(server, preset["calls"], preset["chunk"])
        calls = {
            name: {"p50_us": median(values), "p99_us": percentile(values, 0.99), "n": len(values)}
            for name, values in timings.items()
        }
        for name, row in calls.items():
            print(f"  {name}: p50 {row['p50_us']:,.0f} us, p99 {row['p99_us']:,.0f} us", flush=True)
        print(f"2. fan-out to {preset['clients']:,} sockets per protocol", flush=True)
        fan = await asyncio.to_thread(FanOut, server, preset["clients"])  # creates rows
        swarms = await fan.open()
        results: dict[str, list[float]] = {"rohrpost": [], "jsonrpc": [], "mixed": []}
        lost = dict.fromkeys(results, 0)
        try:
            for turn in range(preset["reps"]):
                order = ["rohrpost", "jsonrpc", "mixed"]
                for key in order[turn % 3 :] + order[: turn % 3]:
                    took = await fan.one(key)
                    if took is None:
                        lost[key] += 1
                    else:
                        results[key].append(took)
                    await fan.tally.quiet(0.05, 5)
        finally:
            for swarm in swarms:
                await swarm.close()
        fanout = {
            key: {
                "p50_ms": median(values) / 1000 if values else None,
                "p99_ms": percentile(values, 0.99) / 1000 if values else None,
                "reps": len(values),
                "incomplete": lost[key],
            }
            for key, values in results.items()
        }
        for key, row in fanout.items():
            print(
                f"  {key}: p50 {row['p50_ms']:.1f} ms, incomplete {row['incomplete']}", flush=True
            )
        return {"calls": calls, "fanout": fanout}
    finally:
        server.stop()


def table(results: dict[str, Any], clients: int) -> str:
    lines = ["Call round trip (one client, request to reply)", ""]
    lines.append(f"{'variant':<24}{'p50 us':>10}{'p99 us':>10}")
    for name, row in results["calls"].items():
        lines.append(f"{name:<24}{row['p50_us']:>10,.0f}{row['p99_us']:>10,.0f}")
    lines += ["", f"Update fan-out: save() call until the last of {clients:,} sockets has it", ""]
    labels = {
        "rohrpost": "rohrpost consumer",
        "jsonrpc": "JSON-RPC consumer",
        "mixed": "half and half, one group",
    }
    lines.append(f"{'sockets':<26}{'p50 ms':>10}{'p99 ms':>10}{'reps':>6}")
    for key, row in results["fanout"].items():
        if row["p50_ms"] is None:
            lines.append(f"{labels[key]:<26}{'-':>10}{'-':>10}{row['reps']:>6}")
            continue
        lines.append(
            f"{labels[key]:<26}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}{row['reps']:>6}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jsonrpc", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 sockets, few calls")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    preset = PRESETS[mode]
    prefix = f"rpsbench-jsonrpc-{os.getpid()}-{int(time.time())}"
    workdir = Path(tempfile.mkdtemp(prefix="rps-bench-jsonrpc-"))
    django_setup(workdir, prefix)
    started = time.monotonic()
    try:
        results = asyncio.run(run(preset, workdir))
    finally:
        from .__main__ import clean_redis

        clean_redis(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), prefix)
    results["meta"] = {
        "mode": mode,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "seconds": round(time.monotonic() - started),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        **preset,
    }
    text = table(results, preset["clients"])
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"jsonrpc-{mode}.txt").write_text(text)
    (RESULTS / f"jsonrpc-{mode}.json").write_text(json.dumps(results, indent=2) + "\n")
    sys.exit(0 if all(r["incomplete"] == 0 for r in results["fanout"].values()) else 1)


if __name__ == "__main__":
    main()
