"""What the periodic re-check costs: ``python -m benchmarks.recheck [--quick]``.

One uvicorn worker holds ``SOCKETS`` sockets with ``PER_SOCKET`` subscriptions
each (10,000 in all), logged in with a session cookie, under the library's
default policy (the product's ``view`` permission, the product must exist).
The same load runs twice, with ``REAUTHORIZE_INTERVAL`` 0 (off) and 60:

* the worker's CPU share (CPU seconds / wall seconds, from /proc) over one
  whole interval, in which every socket is checked once;
* the ping round trip of one healthy client pinging every 50 ms meanwhile:
  p50, p99 and max.

Then the benchmark takes the permission away without telling anyone and
times the ``unsubscribed`` frames the periodic check sends: their spread
shows the checks are spread over the interval, not sent as a burst.
Needs Redis (``BENCH_REDIS_URL``). Prints a table and writes
``benchmarks/results/recheck-<mode>.txt`` and ``.json``; nothing asserts a
timing. The full run takes about 5 minutes, ``--quick`` (100 sockets, a 10 s
interval) about 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SOCKETS, PER_SOCKET, INTERVAL = 1000, 10, 60.0
PING_EVERY = 0.05


def _env(db: str, interval: float, prefix: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.recheck_settings",
        "RECHECK_DB": db,
        "RECHECK_INTERVAL": str(interval),
        "BENCH_PREFIX": prefix,
        "PYTHONPATH": str(ROOT),
    }


SETUP = """
import django, sys
django.setup()
from django.core.management import call_command
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.backends.db import SessionStore
from shop.models import Product
call_command("migrate", verbosity=0)
user = User.objects.create_user("reader")
user.user_permissions.add(Permission.objects.get(codename="view_product"))
Product.objects.bulk_create(Product(name=str(n)) for n in range(int(sys.argv[1])))
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key, user.pk, *Product.objects.values_list("pk", flat=True))
"""

REVOKE = """
import django, sys
django.setup()
from django.contrib.auth.models import User
# A queryset delete sends no m2m_changed: only the periodic check can notice.
User.user_permissions.through.objects.filter(user_id=int(sys.argv[1])).delete()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Server:
    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.port = _free_port()
        self.log = (logdir / f"server-{self.port}.log").open("wb")
        code = (
            "import uvicorn; uvicorn.run('benchmarks.recheck_asgi:application', "
            f"host='127.0.0.1', port={self.port}, log_level='warning', access_log=False, "
            "lifespan='off', ws_ping_interval=None, ws_per_message_deflate=False)"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Ended:
    """Arrival times of ``unsubscribed`` frames; ``done`` once ``target`` arrived."""

    def __init__(self, target: int) -> None:
        self.times: list[float] = []
        self.target = target
        self.done = asyncio.Event()

    def add(self) -> None:
        self.times.append(time.monotonic())
        if len(self.times) >= self.target:
            self.done.set()


async def _subscriber(port: int, cookie: str, groups: list[str], ended: Ended) -> Any:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/",
        additional_headers={"Cookie": cookie},
        max_size=None,
        compression=None,
        open_timeout=60,
    )
    for n, group in enumerate(groups):
        await ws.send(json.dumps({"id": n, "type": "subscribe", "data": {"group": group}}))
        reply = json.loads(await ws.recv())
        assert reply.get("data", {}).get("group") == group, reply

    async def read() -> None:
        async for raw in ws:
            if json.loads(raw).get("type") == "unsubscribed":
                ended.add()

    return ws, asyncio.ensure_future(read())


async def _pinger(ws: ClientConnection, until: float) -> list[float]:
    rtts = []
    n = 0
    while time.monotonic() < until:
        n += 1
        started = time.perf_counter()
        await ws.send(json.dumps({"id": n, "type": "ping"}))
        while json.loads(await ws.recv()).get("id") != n:
            pass
        rtts.append(time.perf_counter() - started)
        await asyncio.sleep(PING_EVERY)
    return rtts


async def _phase(
    interval: float, sockets: int, window: float, db: str, prefix: str, logdir: Path
) -> dict[str, Any]:
    env = _env(db, interval, prefix)
    setup = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", SETUP, str(sockets * PER_SOCKET)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    session, user, *pks = setup.stdout.split()
    cookie = f"sessionid={session}"
    server = Server(env, logdir)
    try:
        ended = Ended(sockets * PER_SOCKET)
        clients = []
        for start in range(0, sockets, 50):  # listen backlogs are small
            batch = range(start, min(start + 50, sockets))
            clients += await asyncio.gather(
                *(
                    _subscriber(
                        server.port,
                        cookie,
                        [f"product-{pk}" for pk in pks[n * PER_SOCKET : (n + 1) * PER_SOCKET]],
                        ended,
                    )
                    for n in batch
                )
            )
        healthy = await connect(f"ws://127.0.0.1:{server.port}/ws/", compression=None)
        cpu_before, wall_before = _cpu_seconds(server.process.pid), time.monotonic()
        rtts = await _pinger(healthy, time.monotonic() + window)
        cpu = _cpu_seconds(server.process.pid) - cpu_before
        wall = time.monotonic() - wall_before
        result: dict[str, Any] = {
            "interval": interval,
            "subscriptions": sockets * PER_SOCKET,
            "cpu_share": cpu / wall,
            "ping_p50_ms": _percentile(rtts, 0.5) * 1000,
            "ping_p99_ms": _percentile(rtts, 0.99) * 1000,
            "ping_max_ms": max(rtts) * 1000,
            "pings": len(rtts),
        }
        if interval > 0:
            revoked_at = time.monotonic()
            await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", REVOKE, user], cwd=ROOT, env=env, check=True
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ended.done.wait(), interval * 1.5)
            spread = [t - revoked_at for t in ended.times]
            result["ended"] = len(spread)
            result["ended_first_s"] = min(spread) if spread else None
            result["ended_last_s"] = max(spread) if spread else None
            # The busiest second: how many subscriptions ended in it.
            per_second: dict[int, int] = {}
            for t in spread:
                per_second[int(t)] = per_second.get(int(t), 0) + 1
            result["ended_max_per_second"] = max(per_second.values()) if per_second else 0
        await healthy.close()
        for ws, reader in clients:
            reader.cancel()
            await ws.close()
        return result
    finally:
        server.stop()
        _delete_keys(prefix)


def _delete_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "REAUTHORIZE_INTERVAL | subscriptions | worker CPU share | ping p50 | ping p99 | ping max",
        "---|---|---|---|---|---",
    ]
    for row in rows:
        lines.append(
            f"{row['interval']:g} s | {row['subscriptions']:,} | {row['cpu_share']:.1%} | "
            f"{row['ping_p50_ms']:.1f} ms | {row['ping_p99_ms']:.1f} ms | "
            f"{row['ping_max_ms']:.1f} ms"
        )
    for row in rows:
        if "ended" in row:
            lines.append(
                f"After the permission went: {row['ended']:,} subscriptions ended between "
                f"{row['ended_first_s']:.1f} s and {row['ended_last_s']:.1f} s, at most "
                f"{row['ended_max_per_second']} in one second."
            )
    return "\n".join(lines)


async def main_async(quick: bool) -> list[dict[str, Any]]:
    sockets = 100 if quick else SOCKETS
    interval = 10.0 if quick else INTERVAL
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for phase_interval in (0.0, interval):
            db = str(Path(tmp) / f"recheck-{phase_interval:g}.sqlite3")
            prefix = f"rps-recheck-{uuid.uuid4().hex[:8]}"
            rows.append(await _phase(phase_interval, sockets, interval, db, prefix, Path(tmp)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 sockets, a 10 s interval")
    args = parser.parse_args()
    rows = asyncio.run(main_async(args.quick))
    text = table(rows)
    print(text)
    mode = "quick" if args.quick else "full"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"recheck-{mode}.txt").write_text(text + "\n")
    (RESULTS / f"recheck-{mode}.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
