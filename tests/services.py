"""Which real services the suite may use, and how it reacts when one is missing.

Locally a missing Redis or PostgreSQL skips the tests that need it, with the
reason. With ``RPS_REQUIRE_SERVICES=1`` (``.ci/run`` sets it) they fail.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from urllib.parse import urlparse

import pytest

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def required() -> bool:
    return os.environ.get("RPS_REQUIRE_SERVICES") == "1"


@cache
def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def redis_address() -> tuple[str, int]:
    parsed = urlparse(REDIS_URL)
    return parsed.hostname or "127.0.0.1", parsed.port or 6379


def redis_up() -> bool:
    return reachable(*redis_address())


def postgres_up() -> bool:
    return reachable(os.environ.get("PGHOST", "127.0.0.1"), int(os.environ.get("PGPORT", "5432")))


def need_redis() -> None:
    """Skip (or, when services are required, fail) the calling test without Redis."""
    if not redis_up():
        message = f"Redis is not reachable at {REDIS_URL}"
        if required():
            pytest.fail(message + " and RPS_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(message)


def free_port() -> int:
    """A port that was free a moment ago, for servers that cannot take a socket.

    Another process may take it before the server binds it: prefer
    :func:`listening_socket` and hand the server its file descriptor.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket() -> socket.socket:
    """A loopback socket bound to a port of the kernel's choosing, listening.

    Servers started with ``--fd`` (uvicorn, daphne) serve on it, so no other
    process can take the port between choosing and binding it, and a server
    restarted on the same socket keeps its port. Keep it open while the
    servers run; connections made while none runs wait in its backlog.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def http_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers ``url`` at all (any status counts)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def redis_databases(count: int) -> list[str]:
    """URLs of ``count`` databases of the test Redis (1, 2, ...: tests share 0 by prefix)."""
    parsed = urlparse(REDIS_URL)
    return [parsed._replace(path=f"/{n}").geturl() for n in range(1, count + 1)]


def delete_redis_keys(redis_url: str, prefix: str) -> None:
    """Remove what a test left under its prefix in a shared Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()
