"""Say so, once, when a set-up delivers nothing and nothing else would tell.

The in-memory channel layer reaches only the sockets of its own process. A
change saved in ``manage.py shell``, a management command or a task worker
goes through that process's own, empty layer: nothing arrives anywhere and
no error happens. The first such send of a process logs one warning.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from channels.layers import InMemoryChannelLayer

logger = logging.getLogger("rohrpost_signals.hints")

#: The warning's text; docs/troubleshooting.rst quotes it.
NOBODY_IN_PROCESS = (
    "Sent %s to group %r through the in-memory channel layer, but no WebSocket is "
    "connected to this process (pid %d). The in-memory layer does not reach other "
    "processes: changes saved in manage.py shell, management commands or task workers "
    "need a shared layer such as channels_redis."
)

_warned = False


def after_send(layer: Any, group: str, origin: str) -> None:
    """Called by the sender after each ``group_send``; warns at most once per process."""
    global _warned
    if _warned or not isinstance(layer, InMemoryChannelLayer):
        return
    # No group at all: no consumer of this process ever joined one.
    if getattr(layer, "groups", None):
        return
    _warned = True
    logger.warning(NOBODY_IN_PROCESS, origin, group, os.getpid())


def reset() -> None:
    """Warn again on the next such send (tests)."""
    global _warned
    _warned = False
