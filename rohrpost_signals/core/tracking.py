"""Field trackers: attach a django-model-utils ``FieldTracker`` and read its diff."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models
from model_utils import FieldTracker

from .. import _compat

_TRACKER_NAME = "_rohrpost_tracker"


@dataclass(frozen=True)
class TrackedField:
    """A watched field: its name, its key in the tracker, its attribute on instances."""

    name: str
    tracker_key: str
    attname: str


@dataclass(frozen=True)
class TrackerBinding:
    """Where a model's instance tracker lives and which fields it covers."""

    instance_attname: str
    fields: tuple[TrackedField, ...]


# One tracker per (model, fields): rebuilding the registry (override_settings
# in tests) must not wrap a model's descriptors and save_base again and again.
_attached: dict[tuple[type[models.Model], frozenset[str]], FieldTracker] = {}


def _existing_trackers(model: type[models.Model]) -> list[FieldTracker]:
    found = []
    for klass in model.__mro__:
        for value in vars(klass).values():
            if isinstance(value, FieldTracker) and hasattr(value, "field_map"):
                found.append(value)
    return found


def _covered_names(model: type[models.Model], tracker: FieldTracker) -> dict[str, str]:
    """Map field name -> tracker key for every concrete field a tracker covers."""
    by_key = {}
    for key in tracker.fields:
        for field in model._meta.concrete_fields:
            if key in (field.name, field.attname):
                by_key[field.name] = key
    return by_key


def bind_tracker(model: type[models.Model], field_names: Sequence[str]) -> TrackerBinding:
    """Find a tracker on ``model`` covering ``field_names``, or attach one limited to them."""
    wanted = frozenset(field_names)
    tracker: FieldTracker | None = None
    covered: dict[str, str] = {}
    for candidate in _existing_trackers(model):
        names = _covered_names(model, candidate)
        if wanted <= names.keys():
            tracker, covered = candidate, names
            break
    if tracker is None:
        tracker = _attached.get((model, wanted))
        if tracker is None:
            tracker = FieldTracker(fields=sorted(wanted))
            name = _TRACKER_NAME
            while hasattr(model, name):
                name += "_"
            _compat.attach_tracker(tracker, model, name)
            _attached[(model, wanted)] = tracker
        covered = {name: name for name in wanted}
    fields = tuple(
        TrackedField(
            name=name,
            tracker_key=covered[name],
            attname=model._meta.get_field(name).attname,  # type: ignore[union-attr]
        )
        for name in sorted(wanted)
    )
    return TrackerBinding(instance_attname=tracker.attname, fields=fields)


def changed_fields(instance: models.Model, binding: TrackerBinding) -> list[str]:
    """Names of watched fields whose value differs from the last saved state.

    Reads the tracker's saved values directly instead of ``tracker.changed()``,
    which asks for the deferred fields once per field.
    """
    values: dict[str, Any] = instance.__dict__
    tracker = values.get(binding.instance_attname)
    if tracker is None:
        # Loaded before the tracker was attached: nothing to compare against.
        return [field.name for field in binding.fields]
    saved = _compat.tracker_saved_values(tracker)
    changed = []
    for field in binding.fields:
        if field.attname not in values:
            continue  # deferred and never loaded: cannot have changed
        if field.tracker_key in saved:
            if saved[field.tracker_key] != values[field.attname]:
                changed.append(field.name)
        elif tracker.has_changed(field.tracker_key):
            changed.append(field.name)
    return changed
