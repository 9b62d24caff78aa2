"""The package's exceptions, and the stable codes clients see in error replies.

Every error reply keeps its human text (rohrpost compatibility) and adds one
of the codes below, which each wire protocol maps: the rohrpost consumer puts
it in the reply's ``code`` key, JSON-RPC in ``error.data.reason``.
"""

from __future__ import annotations

from typing import Any


class RohrpostSignalsError(Exception):
    """Base class of every exception this package raises on purpose."""


class HandlerAlreadyRegistered(RohrpostSignalsError, ValueError):
    """A second, different function was registered for a message type.

    A ``ValueError`` too, as in rohrpost, so ``except ValueError`` still catches it.
    """


# Stable machine codes of error replies (docs/protocol.rst lists them).
BAD_JSON = "bad-json"
BAD_REQUEST = "bad-request"
BAD_ID = "bad-id"
BINARY_FRAME = "binary-frame"
TOO_LARGE = "too-large"
UNKNOWN_TYPE = "unknown-type"
INTERNAL_ERROR = "internal-error"
UNAUTHENTICATED = "unauthenticated"
FORBIDDEN = "forbidden"
UNKNOWN_GROUP = "unknown-group"
TOO_MANY_SUBSCRIPTIONS = "too-many-subscriptions"
RATE_LIMITED = "rate-limited"
REPLAY_BUDGET = "replay-budget"
TIMEOUT = "timeout"
UNAVAILABLE = "unavailable"

ERROR_CODES = frozenset(
    {
        BAD_JSON,
        BAD_REQUEST,
        BAD_ID,
        BINARY_FRAME,
        TOO_LARGE,
        UNKNOWN_TYPE,
        INTERNAL_ERROR,
        UNAUTHENTICATED,
        FORBIDDEN,
        UNKNOWN_GROUP,
        TOO_MANY_SUBSCRIPTIONS,
        RATE_LIMITED,
        REPLAY_BUDGET,
        TIMEOUT,
        UNAVAILABLE,
    }
)


class ProtocolError(RohrpostSignalsError):
    """A request the server answers with an error reply instead of a handler call.

    ``code`` is one of :data:`ERROR_CODES`; ``message_id`` and ``handler`` are
    the request's ``id`` and ``type`` where they could be read (else ``None``).
    The wire protocol renders it; the exception itself knows no frame format.
    """

    def __init__(
        self,
        error: str,
        message_id: Any = None,
        handler: str | None = None,
        *,
        code: str = BAD_REQUEST,
    ) -> None:
        super().__init__(error)
        if code not in ERROR_CODES:
            raise ValueError(f"Unknown error code {code!r}.")
        self.error = error
        self.message_id = message_id
        self.handler = handler
        self.code = code
