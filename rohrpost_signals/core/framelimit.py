"""The ASGI server's own limit on incoming WebSocket messages, where it can be known.

``MAX_MESSAGE_BYTES`` is checked on a frame the server has already read
whole; only the server can refuse a 10 MB frame before buffering it. The
deployment docs give each server's option; this module finds the value in
use so a system check (and, for servers that run no checks, a log line at
start-up) can say when it is far above what the library accepts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from django.conf import settings

from ..conf import conf

#: The servers' defaults (uvicorn 0.3x, daphne 4.x).
UVICORN_DEFAULT = 16 * 1024 * 1024
DAPHNE_DEFAULT = 1024 * 1024


def recommended_server_limit() -> int:
    """Twice ``MAX_MESSAGE_BYTES``: a frame a little too large still gets an error
    reply from the library (the socket stays open); a huge one is cut off by the
    server (close code 1009) before it is buffered."""
    return 2 * conf.MAX_MESSAGE_BYTES


def _option(argv: Sequence[str], name: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _program(argv: Sequence[str]) -> str:
    if not argv:
        return ""
    first = argv[0].replace("\\", "/")
    if first.endswith("/__main__.py"):  # python -m server
        return os.path.basename(os.path.dirname(first))
    return os.path.basename(first)


def server_frame_limit(argv: Sequence[str] | None = None) -> tuple[str, int] | None:
    """``(server, limit in bytes)`` of the server running this process, if known.

    A limit of 0 means none. Known: the ``uvicorn`` and ``daphne`` command
    lines, and ``manage.py runserver`` when daphne provides it.
    """
    argv = sys.argv if argv is None else argv
    program = _program(argv)
    try:
        if program == "uvicorn":
            value = _option(argv, "--ws-max-size")
            return "uvicorn", UVICORN_DEFAULT if value is None else int(value)
        if program == "daphne":
            value = _option(argv, "--websocket-max-message-size")
            return "daphne", DAPHNE_DEFAULT if value is None else int(value)
    except ValueError:
        return None
    if "daphne" in getattr(settings, "INSTALLED_APPS", ()):
        size: object = getattr(settings, "DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE", DAPHNE_DEFAULT)
        if isinstance(size, int):
            return "daphne's runserver", size
    return None


def runs_checkless_server() -> bool:
    """Whether this process is the uvicorn or daphne command, which run no system checks."""
    return _program(sys.argv) in ("uvicorn", "daphne")
