"""Turn model changes into queued messages, after commit, coalesced per transaction.

Outside a transaction a change is sent at once. Inside one, each change is
recorded in a batch kept on the database connection, with a marker callback
registered through ``transaction.on_commit`` (Django drops the markers of
savepoints that roll back), and one flush callback that always sits last in
the connection's commit hooks. When the transaction commits the markers run,
then the flush merges the surviving changes per object and sends one message
per object and group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from .. import _compat
from ..conf import conf
from . import authorization, dispatch, history
from .encoding import new_message_id, subscription_update
from .payload import encode_object, group_names_for, moved_groups, object_data
from .watching import WatchedModel

logger = logging.getLogger("rohrpost_signals")

_BATCH_ATTR = "_rohrpost_signals_batch"


@dataclass(frozen=True)
class State:
    """The net effect of one or more changes to one object."""

    kind: str | None  # "create", "update", "delete"; None: created and deleted again
    updated_fields: frozenset[str] | None


def merge(before: State | None, kind: str, updated: Sequence[str] | None) -> State:
    """Fold one more change into the net effect of the earlier ones."""
    if before is None:
        return State(kind, frozenset(updated) if updated is not None else None)
    if kind == "delete":
        return State(None if before.kind == "create" else "delete", None)
    if kind == "create" or before.kind in ("create", None):
        return State("create", None)
    if before.kind == "delete":
        return State("update", frozenset(updated or ()))
    return State("update", (before.updated_fields or frozenset()) | frozenset(updated or ()))


@dataclass(frozen=True)
class Snapshot:
    """Groups and encoded object for a state, built when the change happened."""

    groups: tuple[str, ...]
    object_json: str
    #: Groups whose subscribers are re-authorized before this update reaches
    #: them: the object moved (a field a group template reads changed).
    recheck: tuple[str, ...] = ()


def snapshot(instance: models.Model, watched: WatchedModel, state: State) -> Snapshot | None:
    if state.kind is None or state.kind not in watched.events:
        return None
    updated = sorted(state.updated_fields) if state.updated_fields is not None else None
    groups = group_names_for(instance, watched, state.kind)
    if not groups:
        return None
    recheck = moved_groups(instance, watched, updated) if state.kind == "update" else ()
    data = object_data(instance, watched, state.kind, updated)
    return Snapshot(tuple(groups), encode_object(watched, data), recheck)


def send_snapshot(watched: WatchedModel, pk: Any, kind: str, snap: Snapshot) -> None:
    alias = conf.CHANNEL_LAYER
    origin = f"{kind} of {watched.label} pk={pk}"
    sequenced = history.enabled()
    for group in snap.recheck:
        # Queued ahead of the update, in the same group's order: each subscriber
        # re-checks before the update reaches it, and a refused one never gets it.
        authorization.recheck_group_before_update(group, origin)
    for group in snap.groups:
        text, parts = subscription_update(new_message_id(), kind, group, snap.object_json)
        dispatch.submit(dispatch.Outgoing(alias, group, text, origin, parts if sequenced else None))


@dataclass
class Change:
    watched: WatchedModel
    instance: models.Model
    pk: Any
    kind: str
    updated_fields: tuple[str, ...] | None
    state: State  # merged with the earlier changes of the batch
    snap: Snapshot | None
    committed: bool = False


@dataclass
class Batch:
    """The changes of one transaction on one connection."""

    changes: list[Change] = field(default_factory=list)
    latest: dict[tuple[type[models.Model], Any], Change] = field(default_factory=dict)
    done: bool = False
    flush_hook: Callable[[], None] = field(init=False)

    def __post_init__(self) -> None:
        self.flush_hook = self.flush

    def add(self, change: Change) -> Callable[[], None]:
        self.changes.append(change)
        self.latest[(type(change.instance), change.pk)] = change

        def mark_committed() -> None:
            change.committed = True

        return mark_committed

    def flush(self) -> None:
        self.done = True
        survivors: dict[tuple[type[models.Model], Any], list[Change]] = {}
        for change in self.changes:
            if change.committed:
                survivors.setdefault((type(change.instance), change.pk), []).append(change)
        for changes in survivors.values():
            try:
                _send_merged(changes)
            except Exception:
                last = changes[-1]
                logger.exception("Could not notify %s pk=%s", last.watched.label, last.pk)


def _send_merged(changes: list[Change]) -> None:
    state: State | None = None
    for change in changes:
        state = merge(state, change.kind, change.updated_fields)
    assert state is not None
    last = changes[-1]
    snap = last.snap
    if state != last.state:
        # A savepoint holding some of the changes rolled back: rebuild from
        # the last change that survived.
        snap = snapshot(last.instance, last.watched, state)
    if snap is not None and state.kind is not None:
        send_snapshot(last.watched, last.pk, state.kind, snap)


def _current_batch(connection: BaseDatabaseWrapper) -> Batch:
    batch: Batch | None = getattr(connection, _BATCH_ATTR, None)
    if (
        batch is not None
        and not batch.done
        and _compat.commit_hook_index(connection, batch.flush_hook) is not None
    ):
        return batch
    batch = Batch()
    setattr(connection, _BATCH_ATTR, batch)
    # Outside every savepoint: a savepoint rollback never drops the flush hook.
    _compat.append_commit_hook(connection, batch.flush_hook)
    return batch


def record(
    watched: WatchedModel,
    instance: models.Model,
    kind: str,
    updated_fields: Sequence[str] | None,
    using: str,
) -> None:
    """Send the change now, or after the surrounding transaction commits."""
    connection = connections[using]
    if not connection.in_atomic_block:
        state = merge(None, kind, updated_fields)
        snap = snapshot(instance, watched, state)
        if snap is not None:
            send_snapshot(watched, instance.pk, kind, snap)
        return
    batch = _current_batch(connection)
    previous = batch.latest.get((type(instance), instance.pk))
    state = merge(previous.state if previous else None, kind, updated_fields)
    change = Change(
        watched=watched,
        instance=instance,
        pk=instance.pk,
        kind=kind,
        updated_fields=tuple(updated_fields) if updated_fields is not None else None,
        state=state,
        snap=snapshot(instance, watched, state),
    )
    transaction.on_commit(batch.add(change), using=using)
    # Keep the flush hook last so it runs after every marker.
    _compat.move_commit_hook_last(connection, batch.flush_hook)
