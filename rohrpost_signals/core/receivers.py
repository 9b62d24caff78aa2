"""``post_save`` / ``post_delete`` receivers connected to each watched model."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save

from .changes import record
from .tracking import changed_fields
from .watching import WatchedModel, watched_models

logger = logging.getLogger("rohrpost_signals")


def on_post_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool = False,
    using: str = "default",
    update_fields: Iterable[str] | None = None,
    **kwargs: Any,
) -> None:
    if raw:
        return  # fixture loading
    watched = watched_models.get(sender)
    if watched is None:
        return
    try:
        if created:
            record(watched, instance, "create", None, using)
            return
        if update_fields is not None:
            names = watched.watched_field_names
            attnames = {f.attname: f.name for f in watched.tracker.fields}
            updated = sorted({attnames.get(name, name) for name in update_fields} & names)
        else:
            updated = changed_fields(instance, watched.tracker)
        if updated:
            record(watched, instance, "update", updated, using)
    except Exception:
        # A notification must never break the save that caused it.
        logger.exception("Could not notify %s pk=%s", watched.label, instance.pk)


def on_post_delete(
    sender: type[models.Model],
    instance: models.Model,
    using: str = "default",
    **kwargs: Any,
) -> None:
    watched = watched_models.get(sender)
    if watched is None:
        return
    try:
        record(watched, instance, "delete", None, using)
    except Exception:
        logger.exception("Could not notify %s pk=%s", watched.label, instance.pk)


def reconnect(before: list[WatchedModel], after: list[WatchedModel]) -> None:
    """Connect the receivers to the watched models: a ``WatchedModels.rebuild`` callback.

    One connection per model and signal (``dispatch_uid``), held strongly: the
    receivers are module functions that live as long as the process.
    """
    for watched in before:
        post_save.disconnect(sender=watched.model, dispatch_uid=_uid("post_save", watched))
        post_delete.disconnect(sender=watched.model, dispatch_uid=_uid("post_delete", watched))
    for watched in after:
        post_save.connect(
            on_post_save, sender=watched.model, dispatch_uid=_uid("post_save", watched), weak=False
        )
        post_delete.connect(
            on_post_delete,
            sender=watched.model,
            dispatch_uid=_uid("post_delete", watched),
            weak=False,
        )


def _uid(signal: str, watched: WatchedModel) -> str:
    return f"rohrpost_signals.{signal}.{watched.label}"
