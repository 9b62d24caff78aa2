"""A real demo server and headless Chromium for the browser tests.

The server is ``daphne testproject.asgi:application`` in its own process, on a
free loopback port, over a SQLite file in a temporary directory (migrated and
seeded once per session, copied per test). The channel layer follows
``RPS_LAYER`` (memory by default; redis uses a prefix of its own).

Chromium is Debian's (``apt-get install chromium``), driven by Playwright for
Python with ``executable_path``; no browser is downloaded. Without Playwright
or Chromium the tests skip, unless ``RPS_REQUIRE_BROWSER=1`` (CI) makes that
a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services

ROOT = Path(__file__).resolve().parents[2]
TESTPROJECT = ROOT / "testproject"
ARTIFACTS = ROOT / "artifacts" / "browser"
_ASGI_APP = "testproject.asgi:application"


def chromium_path() -> str | None:
    return (
        os.environ.get("RPS_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def layer_name() -> str:
    return os.environ.get("RPS_LAYER") or ("redis" if os.environ.get("REDIS_URL") else "memory")


def _missing(reason: str) -> None:
    if os.environ.get("RPS_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and RPS_REQUIRE_BROWSER=1", pytrace=False)
    pytest.skip(reason)


class DemoServer:
    """The demo project served by daphne in a child process."""

    def __init__(self, workdir: Path, database: Path, layer: str) -> None:
        self.workdir = workdir
        self.database = database
        self.layer = layer
        # daphne serves on a socket this process bound (--fd): the port cannot
        # be taken by another process first, and a restarted server keeps it.
        self.socket = services.listening_socket()
        self.port = int(self.socket.getsockname()[1])
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "PYTHONPATH": os.pathsep.join([str(TESTPROJECT), str(ROOT)]),
            "DJANGO_DEBUG": "1",  # serve static files from the ASGI app
            "RPS_DB": "sqlite",
            "RPS_SQLITE_PATH": str(database),
            "RPS_LAYER": layer,
            "RPS_REDIS_PREFIX": f"rps-browser-{uuid.uuid4().hex[:10]}",
            "REDIS_URL": services.REDIS_URL,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        """Run a management command against the server's database and layer."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=TESTPROJECT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self) -> None:
        assert self.process is None, "already running"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(self.socket.fileno()), _ASGI_APP],
            cwd=TESTPROJECT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(self.socket.fileno(),),
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited at start:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/accounts/login/", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not answer within 30 s:\n{self.log()}")

    def kill(self) -> None:
        """End the server abruptly (SIGKILL): no close frames, like a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def card_id(self, title: str) -> int:
        return int(self._one("SELECT id FROM board_card WHERE title = ?", title))

    def board_id(self, name: str) -> int:
        return int(self._one("SELECT id FROM board_board WHERE name = ?", name))

    def _one(self, sql: str, *params: Any) -> Any:
        # Read-only look-ups of seeded ids; every write goes through Django.
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            row = db.execute(sql, params).fetchone()
        assert row is not None, f"nothing found for {sql} {params}"
        return row[0]


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated and seeded demo database; each test gets a copy."""
    workdir = tmp_path_factory.mktemp("demo-db")
    database = workdir / "template.sqlite3"
    server = DemoServer(workdir, database, "memory")
    server.manage("migrate", "--noinput", "-v0")
    server.manage("seed_demo")
    server.socket.close()
    return database


@pytest.fixture
def server(tmp_path: Path, seeded_database: Path) -> Iterator[DemoServer]:
    layer = layer_name()
    if layer == "redis":
        services.need_redis()
    database = tmp_path / "demo.sqlite3"
    shutil.copyfile(seeded_database, database)
    demo = DemoServer(tmp_path, database, layer)
    demo.start()
    yield demo
    demo.stop()
    demo.socket.close()
    # Shown by pytest for failing tests only.
    print(f"----- server log ({layer} layer) -----\n{demo.log()}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[browser]')")
    executable = chromium_path()
    if executable is None:
        _missing("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            # Containers often lack the namespaces Chromium's sandbox needs.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
