"""Consumer mixins that keep a socket's subscriptions authorized while it lives.

Protocol-neutral: the subscriber bases (:mod:`.subscriptions`) mix in
:class:`AsyncAuthorizedSubscriptions` or :class:`SyncAuthorizedSubscriptions`;
the protocol renders ``unsubscribed`` through its ``encode_push``. The
consumer calls ``join_control_groups()`` when it connects and
``leave_control_groups()`` when it disconnects; the mixin handles
``rohrpost.reauthorize`` events, the periodic check and the re-check after a
layer outage.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from .. import exceptions as codes
from ..conf import conf
from ..exceptions import ProtocolError
from . import authorization, limits, selfsend, sessions
from .membership import keeper_for
from .policy import is_authenticated
from .sessions import ACCEPTED_SUBPROTOCOL_KEY

logger = logging.getLogger("rohrpost_signals.authorization")


class _AuthorizedSubscriptions:
    """What both flavours share: the check, the review, the timers."""

    scope: dict[str, Any]
    subscriptions: set[str]
    channel_layer: Any
    channel_name: str
    # Groups a re-check took away: their messages still queued are dropped.
    _revoked: set[str] | frozenset[str] = frozenset()
    _control_groups: tuple[str, ...] = ()
    _recheck_timer: asyncio.TimerHandle | None = None
    #: The protocol's rendering of a message the server sends on its own.
    encode_push: Callable[[str, dict[str, Any]], str]

    def has_permission(self, group: str) -> bool:
        """Ask ``ROHRPOST["SUBSCRIBE_POLICY"]``; override for custom rules."""
        return authorization.check(self.scope.get("user"), group, self.scope) is None

    def subscription_refusal(self, group: str) -> str | None:
        """None if the socket may have ``group``, else the refusal code (may query the DB)."""
        user = self.scope.get("user")
        if type(self).has_permission is _AuthorizedSubscriptions.has_permission:
            return authorization.check(user, group, self.scope)
        if authorization.is_reserved(group):
            return codes.FORBIDDEN
        allowed = authorization.ask(self.has_permission, group)
        return None if allowed else authorization.explain(user, group)

    def refused(self, group: str, code: str, message_id: Any, handler: str) -> ProtocolError:
        """The error for a refused subscribe; the refusal is logged (rate-limited)."""
        authorization.log_refusal(self.scope.get("user"), group, code)
        return ProtocolError(
            f"Permission denied for group {group!r}.", message_id, handler, code=code
        )

    def _unsubscribed(self, group: str, reason: str) -> str:
        return self.encode_push("unsubscribed", {"group": group, "reason": reason})

    def accepted_subprotocol(self) -> str | None:
        """The subprotocol to accept: the one a token client offered beside its token."""
        value = self.scope.get(ACCEPTED_SUBPROTOCOL_KEY)
        return value if isinstance(value, str) else None

    def was_revoked(self, event: dict[str, Any]) -> bool:
        """Whether a group message is for a group a re-check took away."""
        return bool(self._revoked) and event.get("group") in self._revoked

    def _granted(self, group: str) -> None:
        if group in self._revoked:
            self._revoked.discard(group)  # type: ignore[union-attr]

    def _wanted_control_groups(self) -> tuple[str, ...]:
        user = self.scope.get("user")
        own = selfsend.own_groups(self.channel_layer, self.channel_name)
        if is_authenticated(user):
            return (authorization.ALL_GROUP, authorization.user_group(user), *own)
        return (authorization.ALL_GROUP, *own)

    def _review(self, event: dict[str, Any]) -> authorization.Review:
        return sessions.review(
            self.scope, set(self.subscriptions), event, self.subscription_refusal
        )

    def _note_revoked(self, review: authorization.Review) -> list[str]:
        if review.revoked:
            if not isinstance(self._revoked, set):
                self._revoked = set()
            self._revoked.update(review.revoked)
        return [g for g in self._control_groups if review.logged_out and "user." in g]

    # --- control groups, the periodic check, outages (on the event loop) -------

    async def _ajoin_control_groups(self) -> None:
        self._control_groups = self._wanted_control_groups()
        try:
            for group in self._control_groups:
                await limits.bounded(
                    self.channel_layer.group_add(group, self.channel_name), "joining " + group
                )
        except ProtocolError as exc:
            # Down or hung: the socket still opens, and joins when the layer is back.
            keeper_for(self.channel_layer).failed("group_add", exc)

    async def _aleave_control_groups(self, groups: list[str] | None) -> None:
        leaving = self._control_groups if groups is None else groups
        for group in leaving:
            try:
                await limits.bounded(
                    self.channel_layer.group_discard(group, self.channel_name), "leaving " + group
                )
            except ProtocolError:
                keeper_for(self.channel_layer).discard_later(group, self.channel_name)
            # Only now: a server stop that cancels this await must still
            # find the group here and leave it (lifecycle.StopWithServer).
            self._control_groups = tuple(g for g in self._control_groups if g != group)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        interval = conf.REAUTHORIZE_INTERVAL
        if interval > 0:
            # A random first delay spreads the checks of all sockets over the interval.
            loop = asyncio.get_running_loop()
            self._recheck_timer = loop.call_later(random.uniform(0, interval), self._recheck_due)
        try:
            await super().__call__(scope, receive, send)  # type: ignore[misc]
        finally:
            if self._recheck_timer is not None:
                self._recheck_timer.cancel()

    def _recheck_due(self) -> None:
        interval = conf.REAUTHORIZE_INTERVAL
        if interval <= 0:
            return
        loop = asyncio.get_running_loop()
        self._recheck_timer = loop.call_later(interval, self._recheck_due)
        if not getattr(self, "channel_name", None):
            return
        # Before connect() ran (a busy server), the socket has no subscriptions yet.
        if getattr(self, "subscriptions", None) or is_authenticated(self.scope.get("user")):
            task = loop.create_task(self._ask_for_review("periodic"))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)

    async def _ask_for_review(self, why: str) -> None:
        # Through the socket's own channel, so the check runs in turn with its
        # requests and group messages, never beside them.
        try:
            await selfsend.send_to_socket(
                self.channel_layer,
                self.channel_name,
                {"type": authorization.REAUTHORIZE_EVENT, "why": why},
            )
        except Exception as exc:  # the layer is down: the next check or the rejoin asks again
            logger.debug("Could not queue a %s re-check: %r", why, exc)

    async def rejoin_groups(self) -> int:
        """After a layer outage: check again before the groups deliver again."""
        for group in self._control_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        # After the socket's own group (some layers deliver the ask through it),
        # before the subscriptions deliver again.
        if keeper_for(self.channel_layer).after_outage:  # not on a routine renewal
            await self._ask_for_review("rejoin")
        joined: int = await super().rejoin_groups()  # type: ignore[misc]
        return joined


_tasks: set[asyncio.Task[None]] = set()


class AsyncAuthorizedSubscriptions(_AuthorizedSubscriptions):
    """For async consumers."""

    remove_from_group: Callable[[str], Awaitable[None]]

    async def send_unsubscribed(self, group: str, reason: str) -> None:
        """Tell the client the server ended its subscription of ``group``."""
        consumer: Any = self  # a Channels consumer; its send() is declared there
        await consumer.send(text_data=self._unsubscribed(group, reason))

    async def authorize_subscription(self, group: str, message_id: Any, handler: str) -> None:
        """Raise the refusal of ``group`` as ``ProtocolError``; the policy runs in a thread."""
        code = await database_sync_to_async(self.subscription_refusal)(group)
        if code is not None:
            raise self.refused(group, code, message_id, handler)
        self._granted(group)

    async def join_control_groups(self) -> None:
        await self._ajoin_control_groups()

    async def leave_control_groups(self, groups: list[str] | None = None) -> None:
        await self._aleave_control_groups(groups)

    async def rohrpost_reauthorize(self, event: dict[str, Any]) -> None:
        """Channels event: re-run the policy, end what it now refuses."""
        review = await database_sync_to_async(self._review)(event)
        leave = self._note_revoked(review)
        for group, reason in review.revoked.items():
            if group in self.subscriptions:
                await self.remove_from_group(group)
                await self.send_unsubscribed(group, reason)
        if leave:
            await self.leave_control_groups(leave)


class SyncAuthorizedSubscriptions(_AuthorizedSubscriptions):
    """For sync consumers."""

    remove_from_group: Callable[[str], None]

    def send_unsubscribed(self, group: str, reason: str) -> None:
        """Tell the client the server ended its subscription of ``group``."""
        consumer: Any = self  # a Channels consumer; its send() is declared there
        consumer.send(text_data=self._unsubscribed(group, reason))

    def authorize_subscription(self, group: str, message_id: Any, handler: str) -> None:
        """Raise the refusal of ``group`` as ``ProtocolError``."""
        code = self.subscription_refusal(group)
        if code is not None:
            raise self.refused(group, code, message_id, handler)
        self._granted(group)

    def join_control_groups(self) -> None:
        async_to_sync(self._ajoin_control_groups)()

    def leave_control_groups(self, groups: list[str] | None = None) -> None:
        async_to_sync(self._aleave_control_groups)(groups)

    def rohrpost_reauthorize(self, event: dict[str, Any]) -> None:
        """Channels event: re-run the policy, end what it now refuses."""
        review = self._review(event)
        leave = self._note_revoked(review)
        for group, reason in review.revoked.items():
            if group in self.subscriptions:
                self.remove_from_group(group)
                self.send_unsubscribed(group, reason)
        if leave:
            self.leave_control_groups(leave)
