"""What one connection may cost the server, whatever wire protocol it speaks.

Every protocol calls the same pieces, so a hostile client meets the same
walls on each of them:

* :func:`load_json` reads a frame without ever raising anything but
  :class:`~rohrpost_signals.exceptions.ProtocolError` (deep nesting, numbers
  JavaScript cannot read, and the rest of the JSON parser's complaints);
* :func:`valid_message_id` decides which ids can be echoed to a browser;
* :class:`ConnectionBudgets` holds the token buckets of one socket: requests
  per second, replay bytes per minute and the bytes handed to the server for
  it, which bounds the server's write buffer on servers that never push
  back (daphne);
* :func:`bounded` puts a time limit on a channel layer or history call a
  request waits for, so a hung Redis answers with an error instead of hanging.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from .. import exceptions as codes
from ..conf import conf
from ..exceptions import ProtocolError
from . import inflight
from .membership import outage_errors

logger = logging.getLogger("rohrpost_signals")

#: Deepest nesting of arrays and objects a request may have. The JSON parser
#: and encoder recurse, so a 2 KB frame nested 1,000 deep would otherwise end
#: the consumer with ``RecursionError``.
MAX_JSON_DEPTH = 32
#: Ids must survive a round trip through a JavaScript number or stay short.
MAX_ID_INTEGER = 2**53 - 1
MAX_ID_LENGTH = 128
#: The WebSocket close code of a socket whose outgoing budget ran out.
OUTGOING_CLOSE_CODE = 4008
#: The outgoing budget refills in this many seconds: a client must read at
#: least ``MAX_OUTGOING_BYTES`` per this long on average.
OUTGOING_WINDOW = 10.0

_T = TypeVar("_T")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _too_deep(value: Any) -> bool:
    # Iterative, so the check itself cannot hit the recursion limit.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def load_json(text: str) -> Any:
    """``json.loads`` for hostile input: any problem is a ``bad-json`` ProtocolError.

    ``NaN``, ``Infinity`` and numbers that overflow a double are refused (a
    browser could not parse them if they were echoed), as is nesting deeper
    than :data:`MAX_JSON_DEPTH`.
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ProtocolError(
            f"Could not decode JSON message: {reason}.", code=codes.BAD_JSON
        ) from None
    # Only a frame with more brackets than the limit can be too deep.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise ProtocolError(
            f"Could not decode JSON message: nested deeper than {MAX_JSON_DEPTH} levels.",
            code=codes.BAD_JSON,
        )
    return value


def valid_message_id(value: Any) -> bool:
    """An integer a JavaScript number holds exactly, or a short string."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_ID_INTEGER <= value <= MAX_ID_INTEGER
    return isinstance(value, str) and len(value) <= MAX_ID_LENGTH


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; starts full."""

    capacity: float
    rate: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, amount: float = 1.0, now: float | None = None) -> bool:
        """Take ``amount`` tokens if there are that many; else take none."""
        self._refill(time.monotonic() if now is None else now)
        if amount > self.tokens:
            return False
        self.tokens -= amount
        return True


class ConnectionBudgets:
    """The budgets of one socket, sized from the settings when it opens."""

    def __init__(self) -> None:
        self.requests = TokenBucket(conf.MAX_REQUEST_BURST, conf.MAX_REQUESTS_PER_SECOND)
        per_minute = conf.MAX_REPLAY_BYTES_PER_MINUTE
        self.replay = TokenBucket(per_minute, per_minute / 60.0)
        outgoing = conf.MAX_OUTGOING_BYTES
        self.outgoing = TokenBucket(outgoing, outgoing / OUTGOING_WINDOW)
        #: Set once the outgoing budget ran out: nothing more is sent.
        self.overflowed = False

    def allow_request(self) -> bool:
        return self.requests.take()

    def rate_limited(self, message_id: Any, handler: str | None) -> ProtocolError:
        return ProtocolError(
            f"Too many requests on this connection (the limit is "
            f"{conf.MAX_REQUESTS_PER_SECOND:g} per second); slow down.",
            message_id,
            handler,
            code=codes.RATE_LIMITED,
        )

    def charge_replay(self, replay: _T) -> _T:
        """``replay``, or if its texts are over the budget, a ``resync`` without them.

        ``replay`` is a :class:`~rohrpost_signals.core.history.Replay` (any
        dataclass with ``texts`` and ``resync``).
        """
        texts: tuple[str, ...] = getattr(replay, "texts", ())
        if not texts:
            return replay
        if self.replay.take(sum(len(text) for text in texts)):
            return replay
        return replace(replay, texts=(), resync=True)  # type: ignore[type-var]

    def hand_over(self, size: int) -> bool:
        """Count ``size`` bytes handed to the server; False once over the budget."""
        if self.overflowed:
            return False
        if not self.outgoing.take(size):
            self.overflowed = True
        return not self.overflowed


def budgets_of(consumer: Any) -> ConnectionBudgets:
    """The budgets of ``consumer``'s connection, made on first use."""
    budgets: ConnectionBudgets | None = getattr(consumer, "_rps_budgets", None)
    if budgets is None:
        budgets = consumer._rps_budgets = ConnectionBudgets()
    return budgets


def replay_since(since: int | None, already_has: int | None) -> int | None:
    """The ``since`` to replay from for a socket that may already have the group.

    A second ``subscribe`` to a group the socket is in replays again only if
    its ``since`` is newer than what the socket already got (``already_has``).
    """
    if already_has is None or since is None or since > already_has:
        return since
    return None


@functools.cache
def broker_errors() -> tuple[type[Exception], ...]:
    """A layer or history call that failed for the broker's sake, not ours.

    Redis unreachable or timing out (:func:`~.membership.outage_errors`), or
    answering with an error: a read-only replica after a failover, out of
    memory under ``noeviction``.
    """
    try:
        from redis.exceptions import RedisError
    except ImportError:  # channels-redis is an optional dependency
        return outage_errors()
    return (*outage_errors(), RedisError)


async def bounded(
    call: Awaitable[_T], what: str, message_id: Any = None, handler: str | None = None
) -> _T:
    """Await a layer or history ``call``; a hang or failure is a ProtocolError.

    ``SUBSCRIBE_TIMEOUT`` bounds the wait (a hung Redis); Redis down or
    answering with an error becomes an ``unavailable`` error reply. Any other
    exception is a bug: logged with its traceback, answered ``internal-error``.
    """
    timeout = conf.SUBSCRIBE_TIMEOUT
    try:
        return await asyncio.wait_for(inflight.in_turn(call), timeout)
    except asyncio.TimeoutError:
        raise ProtocolError(
            f"Timed out after {timeout:g} s while {what}; try again.",
            message_id,
            handler,
            code=codes.TIMEOUT,
        ) from None
    except ProtocolError:
        raise
    except Exception as exc:
        if not isinstance(exc, broker_errors()):
            logger.exception("A bug while %s", what)
            raise ProtocolError(
                f"The server failed while {what}; it logged the error.",
                message_id,
                handler,
                code=codes.INTERNAL_ERROR,
            ) from exc
        raise ProtocolError(
            f"The server cannot reach its message broker while {what}; try again.",
            message_id,
            handler,
            code=codes.UNAVAILABLE,
        ) from exc
