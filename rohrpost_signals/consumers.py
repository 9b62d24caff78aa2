"""WebSocket consumers speaking the rohrpost protocol."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from . import exceptions as codes
from . import history
from .conf import conf
from .membership import LayerGuard
from .message import build_message
from .policy import default_policy, get_policy
from .protocol import (
    ProtocolError,
    error_frame,
    parse_request,
    subscription_group,
    subscription_since,
)
from .registry import HANDLERS

logger = logging.getLogger("rohrpost_signals")


def _unknown_handler(request: dict[str, Any]) -> ProtocolError:
    return ProtocolError(
        f"No registered handler called {request['type']!r}.",
        request["id"],
        request["type"],
        code=codes.UNKNOWN_TYPE,
    )


def _resolve(text_data: str | None, bytes_data: bytes | None) -> tuple[dict[str, Any], Any]:
    """The request in a frame and its handler, or ``ProtocolError``."""
    request = parse_request(text_data, bytes_data, conf.MAX_MESSAGE_BYTES)
    handler = HANDLERS.get(request["type"])
    if handler is None:
        raise _unknown_handler(request)
    return request, handler


def _internal_error(request: dict[str, Any]) -> str:
    return error_frame(
        ProtocolError(
            f"Internal error while handling {request['type']!r}.",
            request["id"],
            request["type"],
            code=codes.INTERNAL_ERROR,
        )
    )


class _SubscriptionRules:
    """What both consumers share: the subscription bookkeeping and the policy call."""

    scope: dict[str, Any]
    subscriptions: set[str]
    # Per group, the highest seq the socket already has (replayed, or older
    # than its subscription): live copies up to it are dropped.
    replayed_upto: dict[str, int]

    @property
    def channel_layer_alias(self) -> str:
        """Channels reads this when the consumer starts: follow ``ROHRPOST``."""
        return conf.CHANNEL_LAYER

    def has_permission(self, group: str) -> bool:
        """Ask ``ROHRPOST["SUBSCRIBE_POLICY"]``; override for custom rules."""
        try:
            return bool(get_policy()(self.scope.get("user"), group, self.scope))
        except Exception:
            logger.exception("Subscribe policy failed for group %r; refusing.", group)
            return False

    def _policy_needs_thread(self) -> bool:
        # The default policy reads only the already loaded user: no database.
        return get_policy() is not default_policy or type(self).has_permission is not (
            _SubscriptionRules.has_permission
        )

    def _check_limit(self, group: str, request: dict[str, Any]) -> None:
        limit = conf.MAX_SUBSCRIPTIONS
        if group not in self.subscriptions and len(self.subscriptions) >= limit:
            raise ProtocolError(
                f"Too many subscriptions on this connection (the limit is {limit}).",
                request["id"],
                request["type"],
                code=codes.TOO_MANY_SUBSCRIPTIONS,
            )

    def _already_sent(self, event: dict[str, Any]) -> bool:
        seq = event.get("seq")
        if seq is None:
            return False
        upto = getattr(self, "replayed_upto", {}).get(event.get("group"))
        return upto is not None and seq <= upto

    def _subscribed_frames(
        self, group: str, request: dict[str, Any], replay: history.Replay | None
    ) -> list[str]:
        """The subscribe reply, then what the client missed (or ``resync-required``)."""
        if replay is None:
            return [build_message("subscribe", request["id"], data={"group": group})]
        if not hasattr(self, "replayed_upto"):
            self.replayed_upto = {}
        self.replayed_upto[group] = replay.last_seq
        frames = [
            build_message("subscribe", request["id"], data={"group": group, "seq": replay.last_seq})
        ]
        if replay.resync:
            frames.append(
                build_message("resync-required", data={"group": group, "seq": replay.last_seq})
            )
        frames.extend(replay.texts)
        return frames

    @staticmethod
    def _denied(group: str, request: dict[str, Any]) -> ProtocolError:
        return ProtocolError(
            f"Permission denied for group {group!r}.",
            request["id"],
            request["type"],
            code=codes.FORBIDDEN,
        )


class RohrpostConsumer(_SubscriptionRules, LayerGuard, AsyncWebsocketConsumer):  # type: ignore[misc]
    """Async consumer: ``path("ws/rohrpost/", RohrpostConsumer.as_asgi())``."""

    async def connect(self) -> None:
        self.subscriptions = set()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in list(getattr(self, "subscriptions", ())):
            try:
                await self.remove_from_group(group)
            except Exception as exc:  # layer down: leave once it is back
                self.leave_later(group, exc)

    async def add_to_group(self, name: str) -> None:
        """Join group ``name`` on the channel layer (no policy check; see ``subscribe``)."""
        await self.channel_layer.group_add(name, self.channel_name)
        self.subscriptions.add(name)

    async def remove_from_group(self, name: str) -> None:
        """Leave group ``name``; leaving a group the socket is not in is fine."""
        self.subscriptions.discard(name)
        await self.channel_layer.group_discard(name, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels (4.2+) hops to a worker thread to close stale database
        # connections before every handler. Forwarding a group message touches
        # no database, and in a fan-out to 1,000 sockets that hop is most of the
        # time (the benchmarks measure it), so group messages skip it.
        if message.get("type") == "rohrpost.message":
            await self.rohrpost_message(message)
            return
        await super().dispatch(message)

    async def rohrpost_message(self, event: dict[str, Any]) -> None:
        """Forward a group message; the text was encoded once by the sender."""
        if not self._already_sent(event):
            await self.send(text_data=event["message"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request, handler = _resolve(text_data, bytes_data)
        except ProtocolError as exc:
            await self.send(text_data=error_frame(exc))
            return
        try:
            if getattr(handler, "rohrpost_builtin", False) or asyncio.iscoroutinefunction(handler):
                result = handler(self, request)
                if result is not None:
                    await result
            else:
                await database_sync_to_async(handler)(self, request)
        except ProtocolError as exc:
            await self.send(text_data=error_frame(exc))
        except Exception:
            logger.exception("Handler for %r raised", request["type"])
            await self.send(text_data=_internal_error(request))

    async def rohrpost_ping(self, request: dict[str, Any]) -> None:
        """The built-in ``ping`` handler: answer ``pong`` with the request's data."""
        await self.send(text_data=build_message("pong", request["id"], data=request.get("data")))

    async def rohrpost_subscribe(self, request: dict[str, Any]) -> None:
        """The built-in ``subscribe`` handler: check the limit and the policy, join.

        Override it to replace the built-in handler for this consumer.
        """
        group = subscription_group(request)
        since = subscription_since(request)
        self._check_limit(group, request)
        if self._policy_needs_thread():
            allowed = await database_sync_to_async(self.has_permission)(group)
        else:
            allowed = self.has_permission(group)
        if not allowed:
            raise self._denied(group, request)
        # Join first, then read the history: a message committed in between is
        # both replayed and delivered live, and the live copy is dropped.
        await self.add_to_group(group)
        replay = None
        if history.enabled():
            replay = await history.store_for(conf.CHANNEL_LAYER).replay(group, since)
        for frame in self._subscribed_frames(group, request, replay):
            await self.send(text_data=frame)

    async def rohrpost_unsubscribe(self, request: dict[str, Any]) -> None:
        """The built-in ``unsubscribe`` handler: leave the group, reply with its name."""
        group = subscription_group(request)
        if group in self.subscriptions:
            await self.remove_from_group(group)
        await self.send(
            text_data=build_message("unsubscribe", request["id"], data={"group": group})
        )


class SyncRohrpostConsumer(_SubscriptionRules, LayerGuard, WebsocketConsumer):  # type: ignore[misc]
    """Sync consumer, as in rohrpost 3/4: handlers run in the consumer's thread."""

    def connect(self) -> None:
        self.subscriptions = set()
        self.accept()

    def disconnect(self, code: int) -> None:
        for group in list(getattr(self, "subscriptions", ())):
            try:
                self.remove_from_group(group)
            except Exception as exc:  # layer down: the membership expires by itself
                self.leave_failed(group, exc)

    def add_to_group(self, name: str) -> None:
        """Join group ``name`` on the channel layer (no policy check; see ``subscribe``)."""
        async_to_sync(self.channel_layer.group_add)(name, self.channel_name)
        self.subscriptions.add(name)

    def remove_from_group(self, name: str) -> None:
        """Leave group ``name``; leaving a group the socket is not in is fine."""
        self.subscriptions.discard(name)
        async_to_sync(self.channel_layer.group_discard)(name, self.channel_name)

    def rohrpost_message(self, event: dict[str, Any]) -> None:
        """Forward a group message; the text was encoded once by the sender."""
        if not self._already_sent(event):
            self.send(text_data=event["message"])

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request, handler = _resolve(text_data, bytes_data)
        except ProtocolError as exc:
            self.send(text_data=error_frame(exc))
            return
        try:
            if asyncio.iscoroutinefunction(handler):
                async_to_sync(handler)(self, request)
            else:
                handler(self, request)
        except ProtocolError as exc:
            self.send(text_data=error_frame(exc))
        except Exception:
            logger.exception("Handler for %r raised", request["type"])
            self.send(text_data=_internal_error(request))

    def rohrpost_ping(self, request: dict[str, Any]) -> None:
        """The built-in ``ping`` handler: answer ``pong`` with the request's data."""
        self.send(text_data=build_message("pong", request["id"], data=request.get("data")))

    def rohrpost_subscribe(self, request: dict[str, Any]) -> None:
        """The built-in ``subscribe`` handler: check the limit and the policy, join.

        Override it to replace the built-in handler for this consumer.
        """
        group = subscription_group(request)
        since = subscription_since(request)
        self._check_limit(group, request)
        if not self.has_permission(group):
            raise self._denied(group, request)
        self.add_to_group(group)
        replay = None
        if history.enabled():
            store = history.store_for(conf.CHANNEL_LAYER)
            replay = async_to_sync(store.replay)(group, since)
        for frame in self._subscribed_frames(group, request, replay):
            self.send(text_data=frame)

    def rohrpost_unsubscribe(self, request: dict[str, Any]) -> None:
        """The built-in ``unsubscribe`` handler: leave the group, reply with its name."""
        group = subscription_group(request)
        if group in self.subscriptions:
            self.remove_from_group(group)
        self.send(text_data=build_message("unsubscribe", request["id"], data={"group": group}))
