"""Fixtures for the integration suite: real databases, Redis servers, workers and writers.

Every test here starts its own processes and ends them in a finalizer. The
servers use PostgreSQL in a database created for this session (dropped at
the end) and Redis under a prefix of their own: the machine's shared Redis,
or a private ``redis-server`` on a free port for the tests that stop it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import services

from .cluster import Database, RedisServer, Worker, Writer, environment

# Lines for the terminal summary: what the load and fault tests measured.
MEASURED: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MEASURED:
        terminalreporter.section("integration measurements")
        for line in MEASURED:
            terminalreporter.write_line(line)


@pytest.fixture
def measured() -> Callable[[str], None]:
    """Record a line for the summary at the end of the run (and print it)."""

    def add(line: str) -> None:
        print(line)
        MEASURED.append(line)

    return add


def _need_postgres() -> None:
    if not services.postgres_up():
        message = "PostgreSQL is not reachable on 127.0.0.1:5432"
        if services.required():
            pytest.fail(message + " and RPS_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A PostgreSQL database for this session's server processes, migrated."""
    _need_postgres()
    db = Database()
    try:
        db.create()
        yield db.name
    finally:
        db.drop()


@dataclass
class Cluster:
    """Workers and writers sharing one database and one Redis prefix."""

    database: str
    redis_url: str
    logdir: Path
    prefix: str = field(default_factory=lambda: f"rps-it-{uuid.uuid4().hex[:10]}")
    workers: list[Worker] = field(default_factory=list)
    writers: list[Writer] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return environment(self.database, self.redis_url, self.prefix, **extra)

    def worker(self, server: str = "uvicorn", processes: int = 1, **extra: str) -> Worker:
        name = f"{len(self.workers)}-{server}"
        worker = Worker(name, server, self.env(**extra), self.logdir, processes)
        self.workers.append(worker)
        worker.start()
        return worker

    def writer(self, **extra: str) -> Writer:
        writer = Writer(self.env(**extra), self.logdir, name=f"writer-{len(self.writers)}")
        self.writers.append(writer)
        return writer

    def stop(self) -> None:
        for writer in self.writers:
            writer.stop()
        for worker in self.workers:
            worker.close()

    def logs(self) -> str:
        return "\n".join(w.log() for w in self.workers) + "\n".join(w.log() for w in self.writers)


@pytest.fixture
def shared_redis_cluster(database: str, tmp_path: Path) -> Iterator[Cluster]:
    """A cluster on the machine's Redis (REDIS_URL) under a prefix of its own."""
    services.need_redis()
    cluster = Cluster(database, services.REDIS_URL, tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()
        services.delete_redis_keys(services.REDIS_URL, cluster.prefix)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free loopback port."""
    services.need_redis()  # the shared one stands for "Redis is installed here"
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_cluster(database: str, private_redis: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    """A cluster on a private redis-server, which the test may stop and start."""
    cluster = Cluster(database, private_redis.url, tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()
