"""Explicit notifications for writes that send no signals.

``QuerySet.update()`` and ``bulk_create()`` bypass ``post_save``; call these
after them. They obey the same rules as the signal path: sent after commit,
coalesced per transaction, filtered by the model's ``events``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models

from .conf import EVENTS
from .core.changes import record
from .core.watching import watched_models

M = TypeVar("M", bound=models.Model)


def notify_changes(
    objects: Iterable[models.Model],
    kind: str,
    updated_fields: Iterable[str] | None = None,
    using: str = "default",
) -> int:
    """Notify ``kind`` ("create", "update" or "delete") for each object.

    For updates, ``updated_fields`` names the changed fields; watched ones
    become the message's ``updated_fields``. Returns the number of objects of
    watched models that were recorded.
    """
    if kind not in EVENTS:
        raise ValueError(f"kind must be one of {', '.join(EVENTS)}, not {kind!r}")
    count = 0
    for instance in objects:
        watched = watched_models.get(type(instance))
        if watched is None:
            continue
        updated: list[str] | None = None
        if kind == "update":
            updated = sorted(set(updated_fields or ()) & watched.watched_field_names)
            if not updated:
                continue
        record(watched, instance, kind, updated, using)
        count += 1
    return count


def update_and_notify(queryset: models.QuerySet[M], **values: Any) -> int:
    """``queryset.update(**values)``, then an ``update`` message per changed row."""
    pks = list(queryset.values_list("pk", flat=True))
    count = queryset.update(**values)
    if pks:
        fresh = queryset.model._default_manager.using(queryset.db).filter(pk__in=pks)
        notify_changes(fresh, "update", values.keys(), using=queryset.db)
    return count
