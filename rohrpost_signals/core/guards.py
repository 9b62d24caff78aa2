"""Consumer mixins that keep one socket from costing the process more than its share.

* Whatever ends a consumer, its group memberships are left: Channels runs
  ``websocket_disconnect`` only when the server reports the close, so an
  exception escaping a handler would otherwise leave the dead socket in its
  groups until they expire (a day, by default) and its layer queue filling.
* Every frame handed to the server is counted against the socket's outgoing
  budget (:class:`~rohrpost_signals.core.limits.ConnectionBudgets`). uvicorn makes
  ``send`` wait for a slow reader; daphne buffers whatever it is given, so a
  client that never reads would grow the process without bound. A socket
  over ``MAX_OUTGOING_BYTES`` is closed with code
  :data:`~rohrpost_signals.core.limits.OUTGOING_CLOSE_CODE` and sent nothing more.

Place them before Channels' consumer class in the bases.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer

from .limits import OUTGOING_CLOSE_CODE, budgets_of

logger = logging.getLogger("rohrpost_signals")

_CRASH = {"type": "websocket.disconnect", "code": 1011}


def _overflowed(consumer: Any, size: int) -> bool:
    """Count ``size`` bytes; True when the frame must not be sent."""
    return not budgets_of(consumer).hand_over(size)


def _log_overflow(consumer: Any) -> None:
    logger.warning(
        "Closing a socket (code %d) that fell more than %d bytes behind in reading; "
        "it was in %d groups.",
        OUTGOING_CLOSE_CODE,
        budgets_of(consumer).outgoing.capacity,
        len(getattr(consumer, "subscriptions", ())),
    )


class AsyncConnectionGuard:
    """For ``AsyncWebsocketConsumer`` subclasses."""

    _rps_closing = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
        except Exception:
            await self._leave_after_crash()
            raise

    async def _leave_after_crash(self) -> None:
        try:
            await self.websocket_disconnect(_CRASH)  # type: ignore[attr-defined]
        except StopConsumer:
            pass
        except Exception:
            logger.exception("Cleaning up a crashed consumer failed.")

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        if not close and _overflowed(self, size):
            if not self._rps_closing:
                self._rps_closing = True
                _log_overflow(self)
                await self.close(code=OUTGOING_CLOSE_CODE)  # type: ignore[attr-defined]
            return
        await super().send(text_data, bytes_data, close)  # type: ignore[misc]


class SyncConnectionGuard:
    """For ``WebsocketConsumer`` subclasses."""

    _rps_closing = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
        except Exception:
            await database_sync_to_async(self._leave_after_crash)()
            raise

    def _leave_after_crash(self) -> None:
        try:
            self.websocket_disconnect(_CRASH)  # type: ignore[attr-defined]
        except StopConsumer:
            pass
        except Exception:
            logger.exception("Cleaning up a crashed consumer failed.")

    def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        if not close and _overflowed(self, size):
            if not self._rps_closing:
                self._rps_closing = True
                _log_overflow(self)
                self.close(code=OUTGOING_CLOSE_CODE)  # type: ignore[attr-defined]
            return
        super().send(text_data, bytes_data, close)  # type: ignore[misc]
