"""A healthy client's latency while hostile clients attack the same worker.

``python -m benchmarks.hostile [--server uvicorn|daphne] [--layer redis|memory]
[--seconds 15] [--write-docs]``

One worker serves ``testproject`` (SQLite, the frame size limits of
docs/deployment.rst). A healthy client pings every 100 ms and is subscribed to
an order whose status a feed sets through the worker's web view every 50 ms.
The run has two phases of the same length: no attack, then an attack by

* three flooders sending hostile frames as fast as the replies come (JSON
  nested 960 deep, lone surrogates, ``NaN`` ids, ids beyond 2**53);
* one client that never reads, asking again and again for a replay of 1,000
  messages (unsubscribe, then subscribe with an old ``since``);
* one client subscribing to and leaving ever new group names.

Reported per phase: the healthy client's ping round trip and delivery latency
(from the POST that saves to the update's arrival), p50 and p99; the frames
the attackers got answered; the worker's VmRSS. Needs Redis for the default
``--layer redis`` (``BENCH_REDIS_URL``; keys under a prefix of the run,
deleted at the end). Nothing asserts a timing; the numbers go to
docs/performance.rst with ``--write-docs``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import IO, Any

from websockets.asyncio.client import ClientConnection, connect

from .stats import percentile

REPO = Path(__file__).resolve().parent.parent
TESTPROJECT = REPO / "testproject"
FRAME_LIMIT = 2 * 65536
DOCS_BEGIN = ".. hostile-benchmark-begin"
DOCS_END = ".. hostile-benchmark-end"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(layer: str, workdir: Path, redis_url: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RPS_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="testproject.settings",
        DJANGO_DEBUG="0",
        PYTHONPATH=os.pathsep.join([str(TESTPROJECT), str(REPO)]),
        RPS_DB="sqlite",
        RPS_SQLITE_PATH=str(workdir / "db.sqlite3"),
        RPS_LAYER=layer,
        REDIS_URL=redis_url,
        RPS_REDIS_PREFIX=prefix,
        RPS_REDIS_CAPACITY="10000",
    )
    return env


class WriterProcess:
    """``manage.py rps_writer``: one JSON command per line, one answer per line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "rps_writer"],
            cwd=TESTPROJECT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def call(self, **command: Any) -> dict[str, Any]:
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        answer: dict[str, Any] = json.loads(stdout.readline())
        return answer

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def start_server(server: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    app = "testproject.asgi:application"
    limit = str(FRAME_LIMIT)
    if server == "daphne":
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        command += ["--websocket-max-message-size", limit, "--websocket-max-frame-size", limit]
        command += ["--access-log", os.devnull, app]
    else:
        command = [sys.executable, "-m", "uvicorn", app, "--port", str(port)]
        command += ["--no-access-log", "--log-level", "warning", "--ws-max-size", limit]
    process = subprocess.Popen(
        command, cwd=TESTPROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{server} did not start")


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def post_status(port: int, cookie: str, pk: int, status: str) -> None:
    token = "benchmarkcsrftoken0123456789abcd"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            f"/shop/orders/{pk}/status/",
            body=urllib.parse.urlencode({"status": status}),
            headers={
                "Cookie": f"{cookie}; csrftoken={token}",
                "X-CSRFToken": token,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"saving failed with HTTP {response.status}")
    finally:
        connection.close()


async def open_socket(port: int, cookie: str) -> ClientConnection:
    return await connect(
        f"ws://127.0.0.1:{port}/ws/rohrpost/",
        origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
        additional_headers={"Cookie": cookie},
        compression=None,
        max_size=None,
        open_timeout=30,
    )


class Healthy:
    """Pings every 100 ms and records the arrival of every update of its order."""

    def __init__(self, ws: ClientConnection, group: str) -> None:
        self.ws = ws
        self.group = group
        self.pongs: dict[int, asyncio.Future[float]] = {}
        self.arrivals: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def read(self) -> None:
        async for raw in self.ws:
            now = time.monotonic()
            message = json.loads(raw)
            if message.get("type") in ("pong", "ping"):  # "ping": an error reply
                future = self.pongs.pop(message["id"], None)
                if future is not None:
                    future.set_result(now)
            elif message.get("type") == "subscription-update":
                self.arrivals[message["data"]["object"]["status"]] = now
                self.arrived.set()

    async def wait_for(self, values: list[str], timeout: float) -> None:
        """Until every one of ``values`` arrived, or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while any(v not in self.arrivals for v in values):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)

    async def ping_for(self, seconds: float) -> list[float]:
        rtts = []
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            self.pongs[n] = future
            sent = time.monotonic()
            await self.ws.send(json.dumps({"id": n, "type": "ping"}))
            rtts.append(await asyncio.wait_for(future, 30) - sent)
            # 10 per second: well within MAX_REQUESTS_PER_SECOND (20).
            await asyncio.sleep(0.1)
        return rtts


def feed(port: int, cookie: str, pk: int, seconds: float, tag: str) -> dict[str, float]:
    """Save the order's status every 50 ms through the worker; when each POST was sent."""
    sent = {}
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        value = f"{tag}{n}"
        sent[value] = time.monotonic()
        post_status(port, cookie, pk, value)
        n += 1
        time.sleep(0.05)
    return sent


HOSTILE = [
    "[" * 960 + "]" * 960,
    '{"id": "\\ud800", "type": "\\udfff", "data": ["\\udbff"]}',
    '{"id": NaN, "type": "ping"}',
    '{"id": 18446744073709551616, "type": "ping"}',
    '{"id": 1, "type": "ping", "data": ' + "[" * 3000 + "]" * 3000 + "}",
]


async def flooder(port: int, cookie: str, stop: asyncio.Event, counts: list[int]) -> None:
    ws = await open_socket(port, cookie)
    n = 0
    while not stop.is_set():
        await ws.send(HOSTILE[n % len(HOSTILE)])
        await ws.recv()
        n += 1
    counts.append(n)
    await ws.close()


def non_reader(port: int, cookie: str, group: str, since: int, stop: threading.Event) -> int:
    """Raw socket: asks for a replay of the group's history again and again, reads nothing."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/rohrpost/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)

    def send(text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        header = (
            bytes([0x81, 0x80 | len(payload)])
            if len(payload) < 126
            else bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload))
        )
        sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    asked = 0
    sock.settimeout(1.0)
    try:
        while not stop.is_set():
            send(json.dumps({"id": 1, "type": "unsubscribe", "data": group}))
            send(
                json.dumps({"id": 2, "type": "subscribe", "data": {"group": group, "since": since}})
            )
            asked += 1
            time.sleep(0.02)
    except OSError:
        pass  # closed by the server (outgoing budget) or its buffers are full
    finally:
        sock.close()
    return asked


async def churner(port: int, cookie: str, stop: asyncio.Event, counts: list[int]) -> None:
    ws = await open_socket(port, cookie)
    n = 0
    base = 10**9 + os.getpid() * 10**4
    while not stop.is_set():
        name = f"product-{base + n}"
        await ws.send(json.dumps({"id": 1, "type": "subscribe", "data": name}))
        await ws.recv()
        await ws.send(json.dumps({"id": 2, "type": "unsubscribe", "data": name}))
        await ws.recv()
        n += 1
    counts.append(n)
    await ws.close()


async def phase(
    port: int, cookie: str, healthy: Healthy, pk: int, seconds: float, attack: dict[str, Any] | None
) -> dict[str, Any]:
    tag = "a" if attack else "q"
    stop = asyncio.Event()
    stop_thread = threading.Event()
    floods: list[int] = []
    churns: list[int] = []
    tasks: list[asyncio.Future[Any]] = []
    if attack:
        tasks += [asyncio.ensure_future(flooder(port, cookie, stop, floods)) for _ in range(3)]
        tasks.append(asyncio.ensure_future(churner(port, cookie, stop, churns)))
        tasks.append(
            asyncio.ensure_future(
                asyncio.to_thread(
                    non_reader, port, cookie, attack["group"], attack["since"], stop_thread
                )
            )
        )
    feeding = asyncio.ensure_future(asyncio.to_thread(feed, port, cookie, pk, seconds, tag))
    rtts = await healthy.ping_for(seconds)
    sent = await feeding
    stop.set()
    stop_thread.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await healthy.wait_for(list(sent), 30)
    latencies = sorted(healthy.arrivals[v] - t for v, t in sent.items() if v in healthy.arrivals)
    rtts.sort()
    return {
        "ping_p50_ms": percentile(rtts, 50) * 1000,
        "ping_p99_ms": percentile(rtts, 99) * 1000,
        "delivery_p50_ms": percentile(latencies, 50) * 1000,
        "delivery_p99_ms": percentile(latencies, 99) * 1000,
        "updates": len(sent),
        "missed": len(sent) - len(latencies),
        "hostile_frames": sum(floods),
        "churned_groups": sum(churns),
        "replays_asked": sum(r for r in results if isinstance(r, int)),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"rps-bench-hostile-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(args.layer, Path(tmp), redis_url, prefix)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=TESTPROJECT,
            env=env,
            check=True,
        )
        writer = WriterProcess(env)
        port = free_port()
        server = start_server(args.server, port, env)
        try:
            setup = writer.call(op="setup", orders=2)
            cookie = f"sessionid={setup['session']}"
            watched, replayed = setup["orders"]
            # The replayed order's history: 1,000 updates.
            for n in range(1000):
                post_status(port, cookie, replayed, f"h{n}")
            return asyncio.run(measure(args, server.pid, port, cookie, watched, replayed))
        finally:
            server.terminate()
            server.wait(timeout=30)
            writer.stop()
            if args.layer == "redis":
                from redis import Redis

                client = Redis.from_url(redis_url)
                keys = client.keys(f"{prefix}:*")
                if keys:
                    client.delete(*keys)


async def measure(
    args: argparse.Namespace, pid: int, port: int, cookie: str, watched: int, replayed: int
) -> dict[str, Any]:
    ws = await open_socket(port, cookie)
    healthy = Healthy(ws, f"order-{watched}")
    reader = asyncio.ensure_future(healthy.read())
    await ws.send(json.dumps({"id": "s", "type": "subscribe", "data": f"order-{watched}"}))
    probe = await open_socket(port, cookie)
    await probe.send(json.dumps({"id": "h", "type": "subscribe", "data": f"order-{replayed}"}))
    head = json.loads(await probe.recv())["data"]["seq"]
    await probe.close()
    attack = {"group": f"order-{replayed}", "since": head - 999}
    rss_start = rss_mib(pid)
    quiet = await phase(port, cookie, healthy, watched, args.seconds, None)
    rss_quiet = rss_mib(pid)
    hostile = await phase(port, cookie, healthy, watched, args.seconds, attack)
    rss_attack = rss_mib(pid)
    reader.cancel()
    await ws.close()
    quiet["rss_mib"] = rss_quiet - rss_start
    hostile["rss_mib"] = rss_attack - rss_quiet
    return {"server": args.server, "layer": args.layer, "quiet": quiet, "attack": hostile}


def table(result: dict[str, Any]) -> str:
    q, a = result["quiet"], result["attack"]
    rows = [
        (
            "healthy ping p50 / p99 (ms)",
            f"{q['ping_p50_ms']:.1f} / {q['ping_p99_ms']:.1f}",
            f"{a['ping_p50_ms']:.1f} / {a['ping_p99_ms']:.1f}",
        ),
        (
            "healthy delivery p50 / p99 (ms)",
            f"{q['delivery_p50_ms']:.1f} / {q['delivery_p99_ms']:.1f}",
            f"{a['delivery_p50_ms']:.1f} / {a['delivery_p99_ms']:.1f}",
        ),
        (
            "updates received / sent",
            f"{q['updates'] - q['missed']} / {q['updates']}",
            f"{a['updates'] - a['missed']} / {a['updates']}",
        ),
        ("hostile frames answered", "-", f"{a['hostile_frames']:,}"),
        ("group names churned", "-", f"{a['churned_groups']:,}"),
        ("replays asked by the non-reader", "-", f"{a['replays_asked']:,}"),
        ("worker VmRSS change (MiB)", f"{q['rss_mib']:+.1f}", f"{a['rss_mib']:+.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [
        f"{result['server']} + {result['layer']} layer".ljust(width) + "  no attack       attack",
    ]
    lines += [f"{name.ljust(width)}  {quiet.ljust(14)}  {attack}" for name, quiet, attack in rows]
    return "\n".join(lines)


def write_docs() -> None:
    """Put every saved run (``benchmarks/results/hostile-*.json``) into docs/performance.rst."""
    runs = sorted((REPO / "benchmarks" / "results").glob("hostile-*.json"))
    tables = [table(json.loads(path.read_text())) for path in runs]
    path = REPO / "docs" / "performance.rst"
    page = path.read_text(encoding="utf-8")
    begin, end = page.index(DOCS_BEGIN), page.index(DOCS_END)
    blocks = "".join(
        "\n\n.. code-block:: text\n\n" + "\n".join("   " + line for line in text.splitlines())
        for text in tables
    )
    path.write_text(
        page[: begin + len(DOCS_BEGIN)] + blocks + "\n\n" + page[end:], encoding="utf-8"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument("--layer", choices=("redis", "memory"), default="redis")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--write-docs", action="store_true", help="put every saved run into performance.rst"
    )
    args = parser.parse_args()
    result = run(args)
    text = table(result)
    print(text)
    out = REPO / "benchmarks" / "results" / f"hostile-{args.server}-{args.layer}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_docs:
        write_docs()


if __name__ == "__main__":
    main()
