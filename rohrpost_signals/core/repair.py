"""Server-side gap repair: each socket gets every group message in seq order, once.

Channel layers drop group messages: channels-redis skips a worker whose
queue holds ``capacity`` messages, a blocking read that times out can lose
the message it was popping, ``RedisPubSubChannelLayer`` loses what was
published while it reconnected, the in-memory layer drops into full queues.
The sender numbers every message per group (:mod:`history`), so a consumer
sees a drop as a gap, and the group's history has what is missing.

Each socket keeps, per group, the ``(epoch, seq)`` it last got (a
:class:`Cursor`). For a live message :func:`step` says what to do: the next
number is delivered, an old one is a duplicate and dropped, a gap is filled
from the history first, another epoch means the numbers started over (Redis
restarted or was restored): the socket gets ``resync-required`` and goes on
in the new epoch.

One :class:`GroupFeed` per worker process (per event loop and layer alias)
does the reading for all its sockets:

* history reads are shared: sockets missing the same messages (channels-redis
  and PubSub drop per worker, so all sockets of a worker miss the same ones)
  wait for one read in flight and take the texts from a small cache;
* a drop at the end of a burst has no later message to reveal it, so about
  once a second the feed reads the head of every group its sockets hold (one
  script call per Redis shard) and catches up the sockets that are still
  behind the head it read the time before and got nothing of the group since
  (or are in another epoch). A socket still working through a backlog is
  left alone, and the catch-ups go out one after another: a busy worker's
  Redis connection pool, 100 connections in redis-py 8, must never run out.

A range the history no longer holds gives ``resync-required`` for that group,
and the socket continues from there.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from . import history, selfsend
from .membership import outage_errors

logger = logging.getLogger("rohrpost_signals")

#: Seconds between two reads of the heads of the groups a worker holds.
HEAD_CHECK_INTERVAL = 1.0
#: Messages kept below the start of the newest read, per group, for slower sockets.
CACHE_MARGIN = 512


class Cursor(NamedTuple):
    """The last message a socket got in a group; ``epoch`` None for unnumbered senders."""

    epoch: str | None
    seq: int


class Step(enum.Enum):
    FIRST = "first"  # nothing delivered in this group yet
    NEXT = "next"
    DUPLICATE = "duplicate"
    GAP = "gap"
    NEW_EPOCH = "new-epoch"


def step(cursor: Cursor | None, seq: int, epoch: str | None) -> Step:
    """What a live message numbered ``seq`` in ``epoch`` means after ``cursor``."""
    if cursor is None:
        return Step.FIRST
    if epoch is not None and cursor.epoch is not None and epoch != cursor.epoch:
        return Step.NEW_EPOCH
    if seq <= cursor.seq:
        return Step.DUPLICATE
    if seq == cursor.seq + 1:
        return Step.NEXT
    return Step.GAP


@dataclass
class Stats:
    """Counters of this process (``rohrpost_signals.repair.stats``)."""

    #: Messages the layer lost and a socket got from the history instead.
    repaired: int = 0
    #: ``resync-required`` sent because the history could not fill a gap or the epoch changed.
    resyncs: int = 0
    #: Live copies dropped because the socket already had them.
    duplicates: int = 0
    #: History reads for gaps (shared by every socket of a worker).
    history_reads: int = 0
    #: Head checks that found a socket behind its group's head.
    head_repairs: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


stats = Stats()


#: The event a worker's head check sends a socket that is behind: it is
#: handled among the socket's other events, so frames never interleave. A lost
#: one is sent again by the next check, as long as the socket is still behind.
CATCH_UP_EVENT = "rohrpost.catch_up"


class Member(Protocol):
    """What the feed needs of a consumer."""

    channel_layer: Any
    channel_name: str

    def delivery_cursor(self, group: str) -> Cursor | None: ...


@dataclass
class _Cache:
    texts: dict[int, str] = field(default_factory=dict)
    # A read starting at or below this number found the history could not serve it.
    gone_upto: int = -1


class _Gone(Exception):
    pass


class GroupFeed:
    """Shared history reads and the head check for one event loop and layer alias."""

    def __init__(self, alias: str, loop: asyncio.AbstractEventLoop) -> None:
        self.alias = alias
        self.loop = loop
        self._lock = threading.Lock()  # sync consumers track from their threads
        self._members: dict[str, weakref.WeakSet[Any]] = {}
        self._cache: dict[tuple[str, str | None], _Cache] = {}
        self._reads: dict[tuple[str, str | None], tuple[int, asyncio.Task[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._previous: dict[str, history.Head] = {}
        # Each socket's cursor per group at the previous check, by (group, id(socket)).
        self._seen: dict[tuple[str, int], Cursor] = {}
        self._bug_logged = False

    # Membership: which sockets hold which groups.

    def track(self, group: str, member: Any) -> None:
        with self._lock:
            self._members.setdefault(group, weakref.WeakSet()).add(member)
        if _running_loop() is self.loop:
            self._ensure_task()
        else:
            self.loop.call_soon_threadsafe(self._ensure_task)

    def untrack(self, group: str, member: Any) -> None:
        with self._lock:
            members = self._members.get(group)
            if members is None:
                return
            members.discard(member)
            if members:
                return
            del self._members[group]
        if _running_loop() is self.loop:
            self._drop_cache(group)
        else:
            self.loop.call_soon_threadsafe(self._drop_cache, group)

    def _drop_cache(self, group: str) -> None:
        with self._lock:
            if group in self._members:
                return
        for key in [key for key in self._cache if key[0] == group]:
            del self._cache[key]

    def members(self, group: str) -> list[Any]:
        with self._lock:
            return list(self._members.get(group, ()))

    def groups(self) -> list[str]:
        with self._lock:
            return [group for group, members in self._members.items() if members]

    # History reads, shared.

    async def missing(self, group: str, epoch: str | None, after: int, before: int) -> list[str]:
        """The texts numbered ``after + 1`` to ``before - 1``; ``_Gone`` if history lost them."""
        key = (group, epoch)
        for _attempt in range(3):
            cache = self._cache.get(key)
            if cache is not None:
                if after <= cache.gone_upto:
                    raise _Gone
                texts = [cache.texts.get(seq) for seq in range(after + 1, before)]
                if all(text is not None for text in texts):
                    return [text for text in texts if text is not None]
            read = self._reads.get(key)
            if read is None or read[0] > after:
                task = self.loop.create_task(self._read(group, epoch, after))
                read = self._reads[key] = (after, task)
            await asyncio.shield(read[1])
        raise _Gone  # the history keeps not having them: never skip silently

    async def _read(self, group: str, epoch: str | None, after: int) -> None:
        key = (group, epoch)
        try:
            stats.history_reads += 1
            replay = await history.store_for(self.alias).replay(group, after, epoch)
        finally:
            if self._reads.get(key, (0, None))[1] is asyncio.current_task():
                del self._reads[key]
        cache = self._cache.setdefault(key, _Cache())
        if replay.resync or (epoch is not None and replay.epoch != epoch):
            cache.gone_upto = max(cache.gone_upto, after)
            return
        for seq in [seq for seq in cache.texts if seq <= after - CACHE_MARGIN]:
            del cache.texts[seq]
        first = replay.last_seq - len(replay.texts) + 1
        for offset, text in enumerate(replay.texts):
            cache.texts[first + offset] = text

    # The head check.

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._check_heads())

    async def _check_heads(self) -> None:
        while True:
            await asyncio.sleep(HEAD_CHECK_INTERVAL)
            groups = self.groups()
            if not groups:
                self._previous, self._seen = {}, {}
                return
            try:
                await self._check(groups)
            except Exception as exc:
                if isinstance(exc, outage_errors()):
                    # The layer's own failures are logged by membership.
                    logger.debug("Head check failed: %s: %s", type(exc).__name__, exc)
                elif not self._bug_logged:
                    # A bug must not end the checks: tails would be lost silently.
                    self._bug_logged = True
                    logger.exception("The head check of group histories failed with a bug.")
            else:
                self._bug_logged = False

    async def _check(self, groups: list[str]) -> None:
        heads = await history.store_for(self.alias).heads(groups)
        previous, self._previous = self._previous, heads
        seen, self._seen = self._seen, {}
        behind = []
        for group, head in heads.items():
            behind += self._behind(group, head, previous.get(group), seen)
        if behind:
            logger.debug("Head check: %d sockets behind in %d groups", len(behind), len(heads))
        # One after another: a task each would take a connection each.
        for member, event in behind:
            stats.head_repairs += 1
            try:
                await selfsend.send_to_socket(member.channel_layer, member.channel_name, event)
            except Exception as exc:  # full or failing: the next check tries again
                logger.debug("Could not send a catch-up: %s: %s", type(exc).__name__, exc)

    def _behind(
        self,
        group: str,
        head: history.Head,
        before: history.Head | None,
        seen: dict[tuple[str, int], Cursor],
    ) -> list[tuple[Member, dict[str, Any]]]:
        """The sockets of ``group`` that need a catch-up, with the event for each."""
        behind: list[tuple[Member, dict[str, Any]]] = []
        for member in self.members(group):
            cursor = member.delivery_cursor(group)
            if cursor is None:
                continue
            key = (group, id(member))
            self._seen[key] = cursor
            if cursor.epoch is not None and cursor.epoch != head.epoch:
                target = head
            elif (
                before is not None
                and before.epoch == head.epoch
                and cursor.seq < before.seq
                and seen.get(key) == cursor
            ):
                # Behind what was already the head a check ago, and nothing of
                # the group arrived since: not merely working through a backlog.
                target = before
            else:
                continue
            event = {"type": CATCH_UP_EVENT, "group": group, "seq": target.seq}
            behind.append((member, {**event, "epoch": target.epoch}))
        return behind


class Delivery:
    """Consumer mixin: numbered group messages in order, once, or ``resync-required``.

    Channels hands a consumer its events one at a time, the feed's catch-ups
    included, so a socket's frames never interleave. Protocols render frames
    through :meth:`resync_frame` and :meth:`history_frame`.
    """

    cursors: dict[str, Cursor]
    delivery_feed: GroupFeed | None = None

    def resync_frame(self, group: str, seq: int, epoch: str | None) -> str:
        """The frame telling the client to reload ``group``; next comes ``seq + 1``."""
        raise NotImplementedError

    def history_frame(self, text: str) -> str:
        """A message read from the history (rohrpost form) as this socket sends it."""
        return text

    def delivery_cursor(self, group: str) -> Cursor | None:
        return getattr(self, "cursors", {}).get(group)

    def _cursors(self) -> dict[str, Cursor]:
        cursors = getattr(self, "cursors", None)
        if cursors is None:
            cursors = self.cursors = {}
        return cursors

    def bind_feed(self, alias: str) -> None:
        """Call on the event loop when the consumer starts."""
        self.delivery_feed = feed_for(alias)

    def set_cursor(self, group: str, cursor: Cursor) -> None:
        """The socket has everything of ``group`` up to ``cursor`` (subscribe, replay)."""
        self._cursors()[group] = cursor
        if self.delivery_feed is not None:
            self.delivery_feed.track(group, self)

    def forget_cursor(self, group: str) -> None:
        self._cursors().pop(group, None)
        if self.delivery_feed is not None:
            self.delivery_feed.untrack(group, self)

    def plan_live(self, event: dict[str, Any], frame: str) -> tuple[list[str], Cursor | None]:
        """Frames for a numbered live event whose own frame is ``frame``.

        Returns ``(frames, None)`` when nothing needs the history (no frames:
        a duplicate), or ``([], cursor)`` for a gap after ``cursor``: then
        await :meth:`fill_gap`.
        """
        group, seq, epoch = event["group"], event["seq"], event.get("epoch")
        cursors = self._cursors()
        cursor = cursors.get(group)
        kind = step(cursor, seq, epoch)
        if kind is Step.DUPLICATE:
            stats.duplicates += 1
            return [], None
        if kind is Step.GAP:
            return [], cursor
        frames = []
        if kind is Step.NEW_EPOCH:
            stats.resyncs += 1
            frames.append(self.resync_frame(group, seq - 1, epoch))
        cursors[group] = Cursor(epoch, seq)
        if kind is Step.FIRST and self.delivery_feed is not None:
            self.delivery_feed.track(group, self)  # joined with add_to_group
        frames.append(frame)
        return frames, None

    async def fill_gap(self, event: dict[str, Any], frame: str, cursor: Cursor) -> list[str]:
        """The missing messages, then ``frame``; or ``resync-required``, then ``frame``."""
        group, seq, epoch = event["group"], event["seq"], event.get("epoch")
        frames = await self._fetch(group, epoch, cursor.seq, seq)
        self._cursors()[group] = Cursor(epoch, seq)
        frames.append(frame)
        return frames

    async def catch_up_frames(self, event: dict[str, Any]) -> list[str]:
        """Frames that bring the socket up to the head a catch-up event names."""
        group, head = event["group"], history.Head(event["seq"], event["epoch"])
        cursors = self._cursors()
        cursor = cursors.get(group)
        if cursor is None:
            return []
        if cursor.epoch is not None and cursor.epoch != head.epoch:
            stats.resyncs += 1
            cursors[group] = Cursor(head.epoch, head.seq)
            return [self.resync_frame(group, head.seq, head.epoch)]
        if cursor.seq >= head.seq:
            return []
        frames = await self._fetch(group, head.epoch, cursor.seq, head.seq + 1)
        cursors[group] = Cursor(head.epoch, head.seq)
        return frames

    async def _fetch(self, group: str, epoch: str | None, after: int, before: int) -> list[str]:
        feed = self.delivery_feed or feed_for(getattr(self, "channel_layer_alias", "default"))
        try:
            texts = await feed.missing(group, epoch, after, before)
        except _Gone:
            pass
        except Exception as exc:
            logger.warning(
                "Could not read the history of group %r (%s: %s); the socket must resync.",
                group,
                type(exc).__name__,
                exc,
            )
        else:
            stats.repaired += len(texts)
            return [self.history_frame(text) for text in texts]
        stats.resyncs += 1
        return [self.resync_frame(group, before - 1, epoch)]


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, GroupFeed]] = (
    weakref.WeakKeyDictionary()
)


def feed_for(alias: str) -> GroupFeed:
    """The feed of layer ``alias`` on the running event loop."""
    loop = asyncio.get_running_loop()
    feeds = _feeds.setdefault(loop, {})
    feed = feeds.get(alias)
    if feed is None:
        feed = feeds[alias] = GroupFeed(alias, loop)
    return feed


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
