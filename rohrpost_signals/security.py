"""The Origin check in front of the WebSocket consumer, saying why it refuses.

Channels' ``AllowedHostsOriginValidator`` answers a refused handshake with a
bare HTTP 403: the consumer never runs and nothing is logged, so a page on a
host missing from ``ALLOWED_HOSTS`` and a script that sends no ``Origin``
header look the same. These wrappers refuse exactly the same handshakes and
log the reason at WARNING, once per distinct origin, so a flood of refused
handshakes cannot flood the log.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator as ChannelsOriginValidator
from django.conf import settings

logger = logging.getLogger("rohrpost_signals.security")

#: docs/troubleshooting.rst quotes these.
REFUSED_NO_ORIGIN = (
    "Refused a WebSocket handshake with HTTP 403: the request has no Origin header "
    "(browsers always send one; other clients must send an allowed origin)."
)
REFUSED_ORIGIN = (
    "Refused a WebSocket handshake from origin %r with HTTP 403: its host is not allowed "
    "(allowed: %s; see ALLOWED_HOSTS)."
)

# Distinct origins reported at WARNING per process; later refusals go to DEBUG.
MAX_REPORTED = 100
_reported: set[str] = set()
_lock = threading.Lock()


def _first_time(origin: str) -> bool:
    with _lock:
        if origin in _reported or len(_reported) >= MAX_REPORTED:
            return False
        _reported.add(origin)
        return True


class OriginValidator(ChannelsOriginValidator):  # type: ignore[misc]
    """Channels' ``OriginValidator``, logging each refused origin once."""

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        valid: bool = super().valid_origin(parsed_origin)
        if not valid:
            self.report(parsed_origin)
        return valid

    def report(self, parsed_origin: ParseResult | None) -> None:
        origin = parsed_origin.geturl() if parsed_origin is not None else ""
        level = logging.WARNING if _first_time(origin) else logging.DEBUG
        if parsed_origin is None:
            logger.log(level, REFUSED_NO_ORIGIN)
        else:
            allowed = ", ".join(repr(pattern) for pattern in self.allowed_origins) or "nothing"
            logger.log(level, REFUSED_ORIGIN, origin, allowed)


def AllowedHostsOriginValidator(application: Any) -> OriginValidator:
    """Like Channels' factory of the same name: ``ALLOWED_HOSTS`` are the allowed origins."""
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return OriginValidator(application, allowed_hosts)


def reset() -> None:
    """Report every origin again (tests)."""
    with _lock:
        _reported.clear()
