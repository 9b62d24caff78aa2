"""WebSocket consumers speaking the rohrpost protocol."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from .conf import conf
from .message import build_message
from .policy import default_policy, get_policy
from .protocol import ProtocolError, parse_request, subscription_group
from .registry import HANDLERS

logger = logging.getLogger("rohrpost_signals")


def _unknown_handler(request: dict[str, Any]) -> ProtocolError:
    return ProtocolError(
        f"No registered handler called {request['type']!r}.", request["id"], request["type"]
    )


def _internal_error(request: dict[str, Any]) -> str:
    return build_message(
        request["type"], request["id"], f"Internal error while handling {request['type']!r}."
    )


class _SubscriptionRules:
    """What both consumers share: the subscription bookkeeping and the policy call."""

    scope: dict[str, Any]
    subscriptions: set[str]

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
            )

    @staticmethod
    def _denied(group: str, request: dict[str, Any]) -> ProtocolError:
        return ProtocolError(
            f"Permission denied for group {group!r}.", request["id"], request["type"]
        )


class RohrpostConsumer(_SubscriptionRules, AsyncWebsocketConsumer):  # type: ignore[misc]
    """Async consumer: ``path("ws/rohrpost/", RohrpostConsumer.as_asgi())``."""

    async def connect(self) -> None:
        self.subscriptions = set()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in list(getattr(self, "subscriptions", ())):
            await self.remove_from_group(group)

    async def add_to_group(self, name: str) -> None:
        await self.channel_layer.group_add(name, self.channel_name)
        self.subscriptions.add(name)

    async def remove_from_group(self, name: str) -> None:
        self.subscriptions.discard(name)
        await self.channel_layer.group_discard(name, self.channel_name)

    async def rohrpost_message(self, event: dict[str, Any]) -> None:
        """Forward a group message; the text was encoded once by the sender."""
        await self.send(text_data=event["message"])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request = parse_request(text_data, bytes_data, conf.MAX_MESSAGE_BYTES)
            handler = HANDLERS.get(request["type"])
            if handler is None:
                raise _unknown_handler(request)
        except ProtocolError as exc:
            await self.send(text_data=exc.frame())
            return
        try:
            if getattr(handler, "rohrpost_builtin", False) or asyncio.iscoroutinefunction(handler):
                result = handler(self, request)
                if result is not None:
                    await result
            else:
                await database_sync_to_async(handler)(self, request)
        except ProtocolError as exc:
            await self.send(text_data=exc.frame())
        except Exception:
            logger.exception("Handler for %r raised", request["type"])
            await self.send(text_data=_internal_error(request))

    async def rohrpost_ping(self, request: dict[str, Any]) -> None:
        await self.send(text_data=build_message("pong", request["id"], data=request.get("data")))

    async def rohrpost_subscribe(self, request: dict[str, Any]) -> None:
        group = subscription_group(request)
        self._check_limit(group, request)
        if self._policy_needs_thread():
            allowed = await database_sync_to_async(self.has_permission)(group)
        else:
            allowed = self.has_permission(group)
        if not allowed:
            raise self._denied(group, request)
        await self.add_to_group(group)
        await self.send(text_data=build_message("subscribe", request["id"], data={"group": group}))

    async def rohrpost_unsubscribe(self, request: dict[str, Any]) -> None:
        group = subscription_group(request)
        if group in self.subscriptions:
            await self.remove_from_group(group)
        await self.send(
            text_data=build_message("unsubscribe", request["id"], data={"group": group})
        )


class SyncRohrpostConsumer(_SubscriptionRules, WebsocketConsumer):  # type: ignore[misc]
    """Sync consumer, as in rohrpost 3/4: handlers run in the consumer's thread."""

    def connect(self) -> None:
        self.subscriptions = set()
        self.accept()

    def disconnect(self, code: int) -> None:
        for group in list(getattr(self, "subscriptions", ())):
            self.remove_from_group(group)

    def add_to_group(self, name: str) -> None:
        async_to_sync(self.channel_layer.group_add)(name, self.channel_name)
        self.subscriptions.add(name)

    def remove_from_group(self, name: str) -> None:
        self.subscriptions.discard(name)
        async_to_sync(self.channel_layer.group_discard)(name, self.channel_name)

    def rohrpost_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=event["message"])

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            request = parse_request(text_data, bytes_data, conf.MAX_MESSAGE_BYTES)
            handler = HANDLERS.get(request["type"])
            if handler is None:
                raise _unknown_handler(request)
        except ProtocolError as exc:
            self.send(text_data=exc.frame())
            return
        try:
            if asyncio.iscoroutinefunction(handler):
                async_to_sync(handler)(self, request)
            else:
                handler(self, request)
        except ProtocolError as exc:
            self.send(text_data=exc.frame())
        except Exception:
            logger.exception("Handler for %r raised", request["type"])
            self.send(text_data=_internal_error(request))

    def rohrpost_ping(self, request: dict[str, Any]) -> None:
        self.send(text_data=build_message("pong", request["id"], data=request.get("data")))

    def rohrpost_subscribe(self, request: dict[str, Any]) -> None:
        group = subscription_group(request)
        self._check_limit(group, request)
        if not self.has_permission(group):
            raise self._denied(group, request)
        self.add_to_group(group)
        self.send(text_data=build_message("subscribe", request["id"], data={"group": group}))

    def rohrpost_unsubscribe(self, request: dict[str, Any]) -> None:
        group = subscription_group(request)
        if group in self.subscriptions:
            self.remove_from_group(group)
        self.send(text_data=build_message("unsubscribe", request["id"], data={"group": group}))
