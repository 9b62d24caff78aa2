"""WebSocket consumers speaking JSON-RPC 2.0 (and answering 1.0 requests the 1.0 way).

They are thin: frames come from :mod:`.frames`, calls run through
:mod:`.calls`, and subscriptions, policy, limits, history and forwarding are
the protocol-neutral ones of :mod:`rohrpost_signals.core.subscriptions`, shared
with the rohrpost consumers.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from ...conf import conf
from ...core import limits
from ...core.subscribing import subscription_group, subscription_since
from ...core.subscriptions import AsyncSubscriber, SubscriptionRules, SyncSubscriber
from .calls import RpcContext, arun, context_for, error_for, reply_to, run
from .errors import INVALID_PARAMS, RpcError
from .frames import (
    LAST_RESORT_REPLY,
    V2,
    Call,
    Invalid,
    Parsed,
    encode_reply,
    error_reply,
    from_group_text,
    join_batch,
    notification_text,
    parse,
)
from .methods import BUILTINS

__all__ = ["JsonRpcConsumer", "SyncJsonRpcConsumer"]

logger = logging.getLogger("rohrpost_signals.jsonrpc")


#: The names of ``subscribe`` / ``unsubscribe`` params given by position.
_POSITIONAL = ("group", "since", "epoch")


def _builtin_request(call: Call) -> dict[str, Any]:
    """A built-in call as the protocol-neutral subscription code reads requests."""
    params = call.params
    data: Any = params
    if isinstance(params, list):
        if not 1 <= len(params) <= len(_POSITIONAL):
            raise RpcError(INVALID_PARAMS, "Invalid params: expected [group, since, epoch].")
        data = dict(zip(_POSITIONAL, params, strict=False))
    return {"id": call.id, "type": call.method, "data": data}


class _JsonRpcSocket(SubscriptionRules):
    """The JSON-RPC rendering of replies and pushes, shared by both consumers."""

    #: Encodes results and notification params; DjangoJSONEncoder handles dates, decimals, UUIDs.
    json_encoder_class: type[json.JSONEncoder] = DjangoJSONEncoder

    def encode_group_text(self, text: str) -> str:
        return from_group_text(text)

    def encode_push(self, kind: str, data: dict[str, Any]) -> str:
        return notification_text(kind, data, self.json_encoder_class)

    def rpc_context(self, call: Call) -> RpcContext:
        """The ``context`` a method of this socket receives."""
        return context_for(
            call, "websocket", user=self.scope.get("user"), scope=self.scope, consumer=self
        )

    def _parse(self, text_data: str | None) -> Parsed | str:
        """The calls of a frame, or the encoded error reply to the whole frame."""
        try:
            return parse(text_data, conf.MAX_MESSAGE_BYTES)
        except RpcError as error:
            return encode_reply(error_reply(V2, None, error), self.json_encoder_class)

    def _rate_limited(self, call: Call) -> RpcError | None:
        """The error for a call over the connection's request rate, if it is."""
        budgets = limits.budgets_of(self)
        if budgets.allow_request():
            return None
        return error_for(budgets.rate_limited(call.id, call.method), call)

    def _reply_text(self, parsed: Parsed, replies: list[dict[str, Any] | None]) -> str | None:
        texts = [encode_reply(r, self.json_encoder_class) for r in replies if r is not None]
        if parsed.batch:
            return join_batch(texts)
        return texts[0] if texts else None


class JsonRpcConsumer(_JsonRpcSocket, AsyncSubscriber):
    """Async JSON-RPC consumer: ``path("ws/jsonrpc/", JsonRpcConsumer.as_asgi())``.

    Sync methods run in a worker thread, async ones on the event loop.
    """

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await self._receive(text_data)
        except Exception:  # no frame may end the consumer; this one still gets a reply
            logger.exception("Answering a JSON-RPC frame failed")
            await self.send(text_data=LAST_RESORT_REPLY)

    async def _receive(self, text_data: str | None) -> None:
        parsed = self._parse(text_data)
        if isinstance(parsed, str):
            await self.send(text_data=parsed)
            return
        after: list[str] = []
        replies = [await self._answer(item, after) for item in parsed.items]
        text = self._reply_text(parsed, replies)
        if text is not None:
            await self.send(text_data=text)
        for frame in after:
            await self.send(text_data=frame)

    async def _answer(self, item: Call | Invalid, after: list[str]) -> dict[str, Any] | None:
        if isinstance(item, Invalid):
            return error_reply(item.version, item.id, item.error)
        refused = self._rate_limited(item)
        if refused is not None:
            return reply_to(item, error=refused)
        if item.method not in BUILTINS:
            return await arun(item, self.rpc_context(item))
        try:
            result = await self.rpc_builtin(item, after)
        except Exception as exc:
            return reply_to(item, error=error_for(exc, item))
        return reply_to(item, result)

    async def rpc_builtin(self, call: Call, after: list[str]) -> Any:
        """The built-in ``ping``, ``subscribe`` and ``unsubscribe``.

        Frames to send after the reply (history replay) go to ``after``.
        """
        if call.method == "ping":
            return "pong"
        request = _builtin_request(call)
        group = subscription_group(request)
        if call.method == "unsubscribe":
            await self.aleave(group)
            return {"group": group}
        replay = await self.ajoin(group, subscription_since(request), request)
        after.extend(self._after_subscribe(group, replay))
        return self._subscribed_data(group, replay)


class SyncJsonRpcConsumer(_JsonRpcSocket, SyncSubscriber):
    """Sync JSON-RPC consumer: methods run in the consumer's thread.

    Async methods run through ``async_to_sync``.
    """

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            self._receive(text_data)
        except Exception:  # no frame may end the consumer; this one still gets a reply
            logger.exception("Answering a JSON-RPC frame failed")
            self.send(text_data=LAST_RESORT_REPLY)

    def _receive(self, text_data: str | None) -> None:
        parsed = self._parse(text_data)
        if isinstance(parsed, str):
            self.send(text_data=parsed)
            return
        after: list[str] = []
        replies = [self._answer(item, after) for item in parsed.items]
        text = self._reply_text(parsed, replies)
        if text is not None:
            self.send(text_data=text)
        for frame in after:
            self.send(text_data=frame)

    def _answer(self, item: Call | Invalid, after: list[str]) -> dict[str, Any] | None:
        if isinstance(item, Invalid):
            return error_reply(item.version, item.id, item.error)
        refused = self._rate_limited(item)
        if refused is not None:
            return reply_to(item, error=refused)
        if item.method not in BUILTINS:
            return run(item, self.rpc_context(item))
        try:
            result = self.rpc_builtin(item, after)
        except Exception as exc:
            return reply_to(item, error=error_for(exc, item))
        return reply_to(item, result)

    def rpc_builtin(self, call: Call, after: list[str]) -> Any:
        """Sync twin of :meth:`JsonRpcConsumer.rpc_builtin`."""
        if call.method == "ping":
            return "pong"
        request = _builtin_request(call)
        group = subscription_group(request)
        if call.method == "unsubscribe":
            self.leave(group)
            return {"group": group}
        replay = self.join(group, subscription_since(request), request)
        after.extend(self._after_subscribe(group, replay))
        return self._subscribed_data(group, replay)
