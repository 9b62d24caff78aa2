"""Real processes for the integration tests.

A PostgreSQL database of their own, a private ``redis-server`` when a test
needs to stop it, ASGI worker processes (uvicorn or daphne) and a writer
process (``manage.py rps_writer``). Every process is started in its own
session and stopped by the fixture that made it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from tests import services

REPO = Path(__file__).resolve().parents[2]
TESTPROJECT = REPO / "testproject"

#: The servers' frame size limit: twice the library's MAX_MESSAGE_BYTES.
FRAME_LIMIT = 2 * 65536

#: How the layer is sized in every test, as docs/deployment.rst recommends.
RECOMMENDED_LAYER = {
    "RPS_REDIS_CAPACITY": "10000",
    "RPS_REDIS_GROUP_EXPIRY": "3600",
    "RPS_REDIS_RETRY": "1",
}


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[Any], timeout: float = 5) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


class Database:
    """A PostgreSQL database created for one test session, migrated, then dropped."""

    def __init__(self) -> None:
        self.name = f"rps_it_{uuid.uuid4().hex[:10]}"

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(
            host=os.environ.get("PGHOST", "127.0.0.1"),
            port=int(os.environ.get("PGPORT", "5432")),
            user=os.environ.get("PGUSER", "postgres"),
            dbname="postgres",
            autocommit=True,
        )

    def create(self) -> None:
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=TESTPROJECT,
            env=environment(self.name, services.REDIS_URL, "rps-it-migrate"),
            check=True,
            timeout=120,
        )

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def environment(database: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a server or writer process."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RPS_", "PYTEST", "DJANGO_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "DJANGO_DEBUG": "0",
            "PYTHONPATH": os.pathsep.join([str(TESTPROJECT), str(REPO)]),
            "PYTHONUNBUFFERED": "1",
            "RPS_DB": "postgres",
            "PGDATABASE": database,
            "RPS_LAYER": "redis",
            "REDIS_URL": redis_url,
            "RPS_REDIS_PREFIX": prefix,
            **RECOMMENDED_LAYER,
            **extra,
        }
    )
    return env


class RedisServer:
    """A private redis-server on a free loopback port, which a test may stop and start."""

    #: Fresh ports tried when another process took the chosen one first.
    START_ATTEMPTS = 5

    def __init__(self, workdir: Path) -> None:
        self.port = services.free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.started = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.workdir / f"redis-{self.port}.log"

    def start(self) -> None:
        # redis-server cannot take a bound socket, so its port is chosen first;
        # if someone took it meanwhile, the first start moves to another one.
        # A restart must keep its port: clients and workers know it.
        attempts = 1 if self.started else self.START_ATTEMPTS
        for attempt in range(attempts):
            if attempt:
                self.port = services.free_port()
            self._launch()
            if self._wait_ready():
                self.started = True
                return
        raise AssertionError(f"redis-server did not start on port {self.port}:\n{self._log_tail()}")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        process = self.process

        def ready_or_exited() -> bool:
            return process.poll() is not None or port_open(self.port)

        wait_for(ready_or_exited, 30, f"redis-server on port {self.port}")
        return process.poll() is None

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def _launch(self) -> None:
        # No persistence: a restart comes back empty, the worst case for the layer.
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None
        wait_for(lambda: not port_open(self.port), 10, "redis-server to stop")


class Worker:
    """One ASGI server process serving testproject on a loopback port."""

    def __init__(
        self, name: str, server: str, env: dict[str, str], logdir: Path, processes: int = 1
    ) -> None:
        self.name = name
        self.server = server
        self.env = env
        self.processes = processes  # uvicorn --workers: a supervisor and its children
        # The worker serves on a socket this process bound: no other process can
        # take the port first, and a restarted worker keeps it.
        self.socket = services.listening_socket()
        self.port = int(self.socket.getsockname()[1])
        self.logfile = logdir / f"worker-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        app = "testproject.asgi:application"
        fd = str(self.socket.fileno())
        # Frames over twice MAX_MESSAGE_BYTES are refused by the server itself,
        # as docs/deployment.rst recommends.
        limit = str(FRAME_LIMIT)
        if self.server == "daphne":
            daphne = [sys.executable, "-m", "daphne", "--fd", fd]
            sizes = ["--websocket-max-message-size", limit, "--websocket-max-frame-size", limit]
            return [*daphne, *sizes, "--access-log", os.devnull, app]
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--fd",
            fd,
            "--no-access-log",
            "--log-level",
            "warning",
            "--ws-max-size",
            limit,
            *(["--workers", str(self.processes)] if self.processes > 1 else []),
        ]

    def start(self) -> None:
        with self.logfile.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=TESTPROJECT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(self.socket.fileno(),),
            )
        wait_for(self._ready, 60, f"worker {self.name} on port {self.port}", interval=0.1)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited at start:\n{self.log()[-3000:]}")
        # The port accepts connections as soon as this process bound it: only
        # an HTTP answer shows the worker itself is serving.
        return services.http_answers(f"http://127.0.0.1:{self.port}/")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when the kernel's OOM killer strikes."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def close(self) -> None:
        """Stop the worker and give its port back."""
        self.stop()
        self.socket.close()

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])


class Writer:
    """``manage.py rps_writer`` in its own process, driven one JSON line at a time."""

    def __init__(self, env: dict[str, str], logdir: Path, name: str = "writer") -> None:
        self.errfile = logdir / f"{name}.log"
        with self.errfile.open("ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "rps_writer"],
                cwd=TESTPROJECT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._answers.put(line)

    def call(self, timeout: float = 120, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        try:
            answer: dict[str, Any] = json.loads(self._answers.get(timeout=timeout))
        except queue.Empty:
            raise AssertionError(
                f"writer did not answer {command['op']!r} in {timeout} s:\n{self.log()[-3000:]}"
            ) from None
        return answer

    def save(
        self, writes: list[tuple[str, int, str]], interval: float = 0.0, timeout: float = 300
    ) -> list[float]:
        """Save each (model, pk, value); the times after each save() returned.

        With ``interval`` the saves start that many seconds apart.
        """
        answer = self.call(op="save", writes=writes, interval=interval, timeout=timeout)
        saved: list[float] = answer["saved"]
        return saved

    def flush(self) -> dict[str, Any]:
        answer = self.call(op="flush")
        assert answer["flushed"], f"writer still had messages queued: {answer}"
        stats: dict[str, Any] = answer["stats"]
        return stats

    def log(self) -> str:
        return self.errfile.read_text(errors="replace") if self.errfile.exists() else ""

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _stop(self.process)
