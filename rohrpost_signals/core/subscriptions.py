"""Subscriptions, independent of the wire protocol: limit, policy, join, replay, forward.

Every wire protocol's consumer is one of the two base classes below plus its
own frame parsing and rendering. The bases own the socket's group
memberships, the subscribe policy call, the subscription limit, the history
replay of a resuming subscribe and the forwarding of group events; they
render what the client sees through three hooks the protocol supplies:

* :meth:`SubscriptionRules.encode_group_text`: a group event's text, which the
  sender encoded once in rohrpost form, as this protocol's frame;
* :meth:`SubscriptionRules.encode_push`: a message the server sends on its own
  (``resync-required``, ``unsubscribed``) with its ``data``;
* the subscribe reply, which each protocol builds from :meth:`ajoin`'s result.

Group events have the type ``rohrpost.message`` (``dispatch.EVENT_TYPE``)
whatever protocol the receiving socket speaks, so one model change is encoded
once per group and reaches sockets of every protocol in that group.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

from .. import exceptions as codes
from ..conf import conf
from ..exceptions import ProtocolError
from . import history, inflight, limits, repair
from .authorization import log_refusal
from .groupevents import event_text
from .guards import AsyncConnectionGuard, SyncConnectionGuard
from .lifecycle import StopWithServer
from .lifetime import AsyncAuthorizedSubscriptions, SyncAuthorizedSubscriptions
from .membership import LayerGuard, keeper_for
from .subscribing import subscription_epoch

logger = logging.getLogger("rohrpost_signals")

__all__ = ["AsyncSubscriber", "SubscriptionRules", "SyncSubscriber"]


class SubscriptionRules(repair.Delivery):
    """What every consumer shares: the subscription bookkeeping and the policy call.

    ``request`` arguments are the request as the rohrpost protocol shapes it
    (``id``, ``type``, ``data``); another protocol passes an equivalent dict,
    so the errors raised here carry the id and name to answer with.
    """

    scope: dict[str, Any]
    subscriptions: set[str]
    channel_layer: Any
    channel_name: str
    #: Encoder class for group events whose ``message`` is not text (rohrpost's
    #: ``json_encoder``); ``None``: the library's encoder.
    json_encoder: type[json.JSONEncoder] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Both consumer kinds: the group feed of this socket's layer, before
        # any frame or group event can arrive.
        self.bind_feed(self.channel_layer_alias)
        await super().__call__(scope, receive, send)  # type: ignore[misc]

    @property
    def channel_layer_alias(self) -> str:
        """Channels reads this when the consumer starts: follow ``ROHRPOST``."""
        return conf.CHANNEL_LAYER

    # -- Wire hooks -------------------------------------------------------------

    def encode_group_text(self, text: str) -> str:
        """A group event's text (rohrpost form, encoded once by the sender) as sent here."""
        return text

    def encode_push(self, kind: str, data: dict[str, Any]) -> str:
        """A message the server sends on its own, such as ``resync-required``."""
        raise NotImplementedError

    def resync_frame(self, group: str, seq: int, epoch: str | None) -> str:
        return self.encode_push("resync-required", {"group": group, "seq": seq, "epoch": epoch})

    def history_frame(self, text: str) -> str:
        return self.encode_group_text(text)

    # -- Policy and limits ------------------------------------------------------

    def _check_limit(self, group: str, request: dict[str, Any]) -> None:
        limit = conf.MAX_SUBSCRIPTIONS
        if group not in self.subscriptions and len(self.subscriptions) >= limit:
            log_refusal(self.scope.get("user"), group, codes.TOO_MANY_SUBSCRIPTIONS)
            raise ProtocolError(
                f"Too many subscriptions on this connection (the limit is {limit}).",
                request["id"],
                request["type"],
                code=codes.TOO_MANY_SUBSCRIPTIONS,
            )

    def _event_text(self, event: dict[str, Any]) -> str | None:
        """A group event's message as text; ``None`` if it cannot be sent."""
        return event_text(event, self.json_encoder)

    # -- History ----------------------------------------------------------------

    def _note_replay(self, group: str, replay: history.Replay | None) -> history.Replay | None:
        """Remember what the socket has; a replay over the byte budget becomes a resync.

        From here on the socket counts as having the group up to the head:
        live copies up to it are dropped, a gap after it is filled. A socket
        already in the group that gets nothing replayed keeps its place, so
        messages still on their way to it are not taken for duplicates.
        """
        if replay is None:
            return None
        replay = limits.budgets_of(self).charge_replay(replay)
        cursor = self.delivery_cursor(group)
        keep = (
            cursor is not None
            and cursor.epoch == replay.epoch
            and cursor.seq <= replay.last_seq
            and not (replay.texts or replay.resync)
        )
        self.set_cursor(
            group, cursor if keep and cursor else repair.Cursor(replay.epoch, replay.last_seq)
        )
        return replay

    def _since_for(self, group: str, since: int | None) -> int | None:
        """No second replay for a group the socket is in, unless ``since`` is newer."""
        cursor = self.delivery_cursor(group)
        if group not in self.subscriptions or cursor is None:
            return since
        return limits.replay_since(since, cursor.seq)

    def _forget(self, group: str) -> None:
        """Drop the per-group bookkeeping of a group the socket left."""
        self.forget_cursor(group)

    def _join_failed(self, group: str, was_member: bool) -> None:
        """A join or history read failed or hung: leave again, in the background."""
        if not was_member:
            self.subscriptions.discard(group)
            self._forget(group)
            keeper_for(self.channel_layer).discard_later(group, self.channel_name)

    @staticmethod
    def _subscribed_data(group: str, replay: history.Replay | None) -> dict[str, Any]:
        """What a subscribe reply says: the group, and its head with history on."""
        data: dict[str, Any] = {"group": group}
        if replay is not None:
            data["seq"] = replay.last_seq
            data["epoch"] = replay.epoch
        return data

    def _after_subscribe(self, group: str, replay: history.Replay | None) -> list[str]:
        """What follows the subscribe reply: ``resync-required`` or the missed messages."""
        if replay is None:
            return []
        frames = []
        if replay.resync:
            repair.stats.resyncs += 1
            frames.append(self.resync_frame(group, replay.last_seq, replay.epoch))
        frames.extend(self.encode_group_text(text) for text in replay.texts)
        return frames

    def _live_frame(self, event: dict[str, Any]) -> str | None:
        text = self._event_text(event)
        return None if text is None else self.encode_group_text(text)


class AsyncSubscriber(
    SubscriptionRules,
    AsyncAuthorizedSubscriptions,
    LayerGuard,
    AsyncConnectionGuard,
    StopWithServer,
    AsyncWebsocketConsumer,  # type: ignore[misc]
):
    """Base of the async consumers: group membership, subscribe, forwarding."""

    async def connect(self) -> None:
        self.subscriptions = set()
        await self.join_control_groups()
        await self.accept(self.accepted_subprotocol())

    async def disconnect(self, code: int) -> None:
        await self.leave_control_groups()
        for group in list(getattr(self, "subscriptions", ())):
            try:
                # In turn: a whole worker's sockets may close at once.
                await inflight.in_turn(self.remove_from_group(group))
            except Exception as exc:  # layer down: leave once it is back
                self.leave_later(group, exc)

    async def add_to_group(self, name: str) -> None:
        """Join group ``name`` on the channel layer (no policy check; see ``subscribe``)."""
        await self.channel_layer.group_add(name, self.channel_name)
        self.subscriptions.add(name)

    async def remove_from_group(self, name: str) -> None:
        """Leave group ``name``; leaving a group the socket is not in is fine."""
        self.subscriptions.discard(name)
        self._forget(name)
        self._note_leaving(name)
        await self.channel_layer.group_discard(name, self.channel_name)
        self._note_left(name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels (4.2+) hops to a worker thread to close stale database
        # connections before every handler. The built-in forwarding of a group
        # message touches no database, and in a fan-out to 1,000 sockets that
        # hop is most of the time (the benchmarks measure it), so it skips the
        # hop; a subclass's own rohrpost_message gets it, as Channels documents.
        kind = message.get("type")
        if kind == "rohrpost.message" and self._forwards_only():
            await self.rohrpost_message(message)
            return
        if kind == repair.CATCH_UP_EVENT:
            await self.rohrpost_catch_up(message)
            return
        await super().dispatch(message)

    @classmethod
    def _forwards_only(cls) -> bool:
        return cls.rohrpost_message is AsyncSubscriber.rohrpost_message

    async def rohrpost_message(self, event: dict[str, Any]) -> None:
        """Forward a group message; the text was encoded once by the sender.

        A numbered message goes out in order, once: a gap before it is filled
        from the group's history first (see ``rohrpost_signals.repair``).
        """
        if self.was_revoked(event):
            return
        frame = self._live_frame(event)
        if frame is None:
            return
        if event.get("seq") is None or "group" not in event:
            await self.send(text_data=frame)
            return
        frames, gap_after = self.plan_live(event, frame)
        if gap_after is not None:
            frames = await self.fill_gap(event, frame, gap_after)
        for text in frames:
            await self.send(text_data=text)

    async def rohrpost_catch_up(self, event: dict[str, Any]) -> None:
        """The worker's head check found the socket behind in a group: catch up."""
        if event["group"] in self.subscriptions:
            for text in await self.catch_up_frames(event):
                await self.send(text_data=text)

    async def ajoin(
        self, group: str, since: int | None, request: dict[str, Any]
    ) -> history.Replay | None:
        """Check the limit and the policy, join ``group``, read what the client missed.

        Raises ``ProtocolError`` when refused. Returns the history's answer
        (``None`` when history is off); send the reply, then
        ``self._after_subscribe(group, replay)``.
        """
        subscription_epoch(request)  # a bad one is an error before anything happens
        self._check_limit(group, request)
        await self.authorize_subscription(group, request["id"], request["type"])
        since = self._since_for(group, since)
        was_member = group in self.subscriptions
        # Join first, then read the history: a message committed in between is
        # both replayed and delivered live, and the live copy is dropped.
        # A hung or unreachable Redis answers with an error, within a timeout.
        try:
            await limits.bounded(
                self.add_to_group(group), f"joining {group!r}", request["id"], request["type"]
            )
            replay = None
            if history.enabled():
                replay = await limits.bounded(
                    history.store_for(conf.CHANNEL_LAYER).replay(
                        group, since, subscription_epoch(request)
                    ),
                    f"reading the history of {group!r}",
                    request["id"],
                    request["type"],
                )
        except ProtocolError:
            self._join_failed(group, was_member)
            raise
        return self._note_replay(group, replay)

    async def aleave(self, group: str) -> None:
        """End the subscription to ``group`` if there is one."""
        if group in self.subscriptions:
            try:
                await limits.bounded(self.remove_from_group(group), f"leaving {group!r}")
            except ProtocolError:  # hung or down: leave once the layer answers
                keeper_for(self.channel_layer).discard_later(group, self.channel_name)


class SyncSubscriber(
    SubscriptionRules,
    SyncAuthorizedSubscriptions,
    LayerGuard,
    SyncConnectionGuard,
    StopWithServer,
    WebsocketConsumer,  # type: ignore[misc]
):
    """Base of the sync consumers: handlers run in the consumer's thread."""

    def connect(self) -> None:
        self.subscriptions = set()
        self.join_control_groups()
        self.accept(self.accepted_subprotocol())

    def disconnect(self, code: int) -> None:
        self.leave_control_groups()
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
        self._forget(name)
        self._note_leaving(name)
        async_to_sync(self.channel_layer.group_discard)(name, self.channel_name)
        self._note_left(name)

    def rohrpost_message(self, event: dict[str, Any]) -> None:
        """Forward a group message; the text was encoded once by the sender.

        A numbered message goes out in order, once: a gap before it is filled
        from the group's history first (see ``rohrpost_signals.repair``).
        """
        if self.was_revoked(event):
            return
        frame = self._live_frame(event)
        if frame is None:
            return
        if event.get("seq") is None or "group" not in event:
            self.send(text_data=frame)
            return
        frames, gap_after = self.plan_live(event, frame)
        if gap_after is not None:
            frames = async_to_sync(self.fill_gap)(event, frame, gap_after)
        for text in frames:
            self.send(text_data=text)

    def rohrpost_catch_up(self, event: dict[str, Any]) -> None:
        """The worker's head check found the socket behind in a group: catch up."""
        if event["group"] in self.subscriptions:
            for text in async_to_sync(self.catch_up_frames)(event):
                self.send(text_data=text)

    def join(self, group: str, since: int | None, request: dict[str, Any]) -> history.Replay | None:
        """Sync twin of :meth:`AsyncSubscriber.ajoin`."""
        subscription_epoch(request)  # a bad one is an error before anything happens
        self._check_limit(group, request)
        self.authorize_subscription(group, request["id"], request["type"])
        since = self._since_for(group, since)
        was_member = group in self.subscriptions
        try:
            async_to_sync(limits.bounded)(
                self.channel_layer.group_add(group, self.channel_name),
                f"joining {group!r}",
                request["id"],
                request["type"],
            )
            self.subscriptions.add(group)
            replay = None
            if history.enabled():
                replay = async_to_sync(limits.bounded)(
                    history.store_for(conf.CHANNEL_LAYER).replay(
                        group, since, subscription_epoch(request)
                    ),
                    f"reading the history of {group!r}",
                    request["id"],
                    request["type"],
                )
        except ProtocolError:
            async_to_sync(self._aleave_later)(group, was_member)
            raise
        return self._note_replay(group, replay)

    async def _aleave_later(self, group: str, was_member: bool) -> None:
        # keeper_for needs the event loop the layer runs on.
        self._join_failed(group, was_member)

    def leave(self, group: str) -> None:
        """End the subscription to ``group`` if there is one."""
        if group in self.subscriptions:
            self.subscriptions.discard(group)
            self._forget(group)
            try:
                async_to_sync(limits.bounded)(
                    self.channel_layer.group_discard(group, self.channel_name),
                    f"leaving {group!r}",
                )
            except ProtocolError:  # hung or down: leave once the layer answers
                async_to_sync(self._aleave_later)(group, False)
