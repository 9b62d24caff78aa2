"""WebSocket consumers speaking the rohrpost protocol."""

from __future__ import annotations

import logging
from typing import Any

from ...core import history
from ...core.encoding import build_text
from ...core.subscribing import subscription_group, subscription_since
from ...core.subscriptions import AsyncSubscriber, SubscriptionRules, SyncSubscriber
from .frames import LAST_RESORT_REPLY
from .main import ahandle_rohrpost_message, handle_rohrpost_message

logger = logging.getLogger("rohrpost_signals")


def _subscribed_frames(
    consumer: SubscriptionRules,
    group: str,
    request: dict[str, Any],
    replay: history.Replay | None,
) -> list[str]:
    """The subscribe reply, then what the client missed (or ``resync-required``)."""
    reply = build_text("subscribe", request["id"], data=consumer._subscribed_data(group, replay))
    return [reply, *consumer._after_subscribe(group, replay)]


class _RohrpostFrames(SubscriptionRules):
    """The rohrpost rendering of the subscription messages."""

    def encode_push(self, kind: str, data: dict[str, Any]) -> str:
        return build_text(kind, data=data)


class RohrpostConsumer(_RohrpostFrames, AsyncSubscriber):
    """Async consumer: ``path("ws/rohrpost/", RohrpostConsumer.as_asgi())``."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await self._answer(text_data, bytes_data)
        except Exception:  # no frame may end the consumer; this one still gets a reply
            logger.exception("Answering a frame failed")
            await self.send(text_data=LAST_RESORT_REPLY)

    async def _answer(self, text_data: str | None, bytes_data: bytes | None) -> None:
        await ahandle_rohrpost_message(self, text_data, bytes_data)

    async def rohrpost_ping(self, request: dict[str, Any]) -> None:
        """The built-in ``ping`` handler: answer ``pong`` with the request's data."""
        await self.send(text_data=build_text("pong", request["id"], data=request.get("data")))

    async def rohrpost_subscribe(self, request: dict[str, Any]) -> None:
        """The built-in ``subscribe`` handler: check the limit and the policy, join.

        Override it to replace the built-in handler for this consumer.
        """
        group = subscription_group(request)
        replay = await self.ajoin(group, subscription_since(request), request)
        for frame in _subscribed_frames(self, group, request, replay):
            await self.send(text_data=frame)

    async def rohrpost_unsubscribe(self, request: dict[str, Any]) -> None:
        """The built-in ``unsubscribe`` handler: leave the group, reply with its name."""
        group = subscription_group(request)
        await self.aleave(group)
        await self.send(text_data=build_text("unsubscribe", request["id"], data={"group": group}))


class SyncRohrpostConsumer(_RohrpostFrames, SyncSubscriber):
    """Sync consumer, as in rohrpost 3/4: handlers run in the consumer's thread."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            self._answer(text_data, bytes_data)
        except Exception:  # no frame may end the consumer; this one still gets a reply
            logger.exception("Answering a frame failed")
            self.send(text_data=LAST_RESORT_REPLY)

    def _answer(self, text_data: str | None, bytes_data: bytes | None) -> None:
        handle_rohrpost_message(self, text_data, bytes_data)

    def rohrpost_ping(self, request: dict[str, Any]) -> None:
        """The built-in ``ping`` handler: answer ``pong`` with the request's data."""
        self.send(text_data=build_text("pong", request["id"], data=request.get("data")))

    def rohrpost_subscribe(self, request: dict[str, Any]) -> None:
        """The built-in ``subscribe`` handler: check the limit and the policy, join.

        Override it to replace the built-in handler for this consumer.
        """
        group = subscription_group(request)
        replay = self.join(group, subscription_since(request), request)
        for frame in _subscribed_frames(self, group, request, replay):
            self.send(text_data=frame)

    def rohrpost_unsubscribe(self, request: dict[str, Any]) -> None:
        """The built-in ``unsubscribe`` handler: leave the group, reply with its name."""
        group = subscription_group(request)
        self.leave(group)
        self.send(text_data=build_text("unsubscribe", request["id"], data={"group": group}))
