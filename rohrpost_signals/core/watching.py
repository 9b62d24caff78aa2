"""The watched models: which models are watched, and how (``watched_models``).

Built from ``ROHRPOST["MODELS"]`` and the mixins when the app is ready, and
rebuilt when the setting changes (``override_settings`` in tests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models
from django.utils.module_loading import import_string

from ..conf import EVENTS, conf
from ..mixins import NotifyBase, mixin_events
from . import groups as group_names
from .jsoncompat import encoder_class
from .tracking import TrackerBinding, bind_tracker

RebuildCallback = Callable[["list[WatchedModel]", "list[WatchedModel]"], None]
Serializer = Callable[[models.Model, "list[str] | None", str], Any]


@dataclass(frozen=True)
class WatchedModel:
    """Everything the signal receivers need to know about one model."""

    model: type[models.Model]
    label: str
    tracker: TrackerBinding
    payload_fields: tuple[models.Field[Any, Any], ...] | None
    group_templates: tuple[str, ...]
    events: frozenset[str]
    serializer: Serializer | None
    has_get_group_name: bool
    has_group_name: bool
    has_push_data: bool
    #: A serializer class (Django REST framework's, or any with ``.data``):
    #: the model's ``serializer_class``, else the ``serializer`` setting's.
    serializer_class: type | None = None
    #: The model's ``encoder`` attribute (a ``JSONEncoder`` subclass), as in rohrpost.
    encoder: type[json.JSONEncoder] | None = None

    @property
    def watched_field_names(self) -> frozenset[str]:
        return frozenset(field.name for field in self.tracker.fields)

    def group_patterns(self) -> list[re.Pattern[str]] | None:
        """Patterns for every group name this model can produce; None if unknowable."""
        if self.has_get_group_name:
            return None
        if self.has_group_name:
            static = getattr(self.model, "group_name", None)
            if not isinstance(static, str):
                return None
            try:
                return [group_names.template_pattern(self.model, static)]
            except ValueError:
                return []
        if self.group_templates:
            return [group_names.template_pattern(self.model, t) for t in self.group_templates]
        return [group_names.default_pattern(self.model)]


class WatchedModels:
    """Every watched model's :class:`WatchedModel`, by model class."""

    def __init__(self) -> None:
        self._models: dict[type[models.Model], WatchedModel] = {}
        # The signal receivers connect through this: this module imports none of them.
        self._rebuild_callbacks: list[RebuildCallback] = []
        self._patterns: list[re.Pattern[str]] | None = None

    def get(self, model: type[models.Model]) -> WatchedModel | None:
        return self._models.get(model)

    def __iter__(self) -> Iterator[WatchedModel]:
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    def can_produce(self, group: str) -> bool:
        """Whether some watched model's group rule yields exactly ``group``."""
        if self._patterns is None:
            patterns: list[re.Pattern[str]] = []
            for watched in self._models.values():
                patterns.extend(watched.group_patterns() or [])
            self._patterns = patterns
        return any(pattern.fullmatch(group) for pattern in self._patterns)

    def on_rebuild(self, callback: RebuildCallback) -> None:
        """Call ``callback(before, after)`` with the watched models at every rebuild."""
        if callback not in self._rebuild_callbacks:
            self._rebuild_callbacks.append(callback)

    def rebuild(self) -> None:
        """Read the settings and mixins again (at start-up, and when ``ROHRPOST`` changes)."""
        before = list(self._models.values())
        self._models = {model: build_watched(model, options) for model, options in _configured()}
        self._patterns = None
        after = list(self._models.values())
        for callback in self._rebuild_callbacks:
            callback(before, after)


def _configured() -> list[tuple[type[models.Model], dict[str, Any]]]:
    """Models named in settings plus models marked with a mixin.

    Invalid entries are skipped here; the system checks report them.
    """
    found: dict[type[models.Model], dict[str, Any]] = {}
    for model in apps.get_models():
        if issubclass(model, NotifyBase):
            found[model] = {}
    for label, options in conf.MODELS.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            continue
        if isinstance(options, dict):
            found[model] = options
    return list(found.items())


def _field_names(model: type[models.Model], names: object) -> list[str]:
    if not isinstance(names, (list, tuple)):
        return []
    known = {f.name: f.name for f in model._meta.concrete_fields}
    known.update({f.attname: f.name for f in model._meta.concrete_fields})
    return [known[name] for name in names if isinstance(name, str) and name in known]


def build_watched(model: type[models.Model], options: dict[str, Any]) -> WatchedModel:
    excluded = set(_field_names(model, options.get("exclude")))
    configured = _field_names(model, options.get("fields")) if "fields" in options else None
    if configured is None:
        tracked = [f.name for f in model._meta.concrete_fields if not f.primary_key]
    else:
        tracked = list(configured)
    tracked = [name for name in tracked if name not in excluded]

    payload_fields = None
    if configured is not None:
        by_name = {f.name: f for f in model._meta.concrete_fields}
        payload_fields = tuple(by_name[name] for name in configured if name not in excluded)

    events = options.get("events")
    if isinstance(events, (list, tuple)):
        event_set = frozenset(e for e in events if e in EVENTS)
    elif issubclass(model, NotifyBase):
        event_set = mixin_events(model)
    else:
        event_set = frozenset(EVENTS)

    serializer: Any = None
    path = options.get("serializer")
    if isinstance(path, str):
        try:
            serializer = import_string(path)
        except ImportError:
            serializer = None
    elif callable(path):
        serializer = path
    # A class is a serializer class (``Serializer(instance).data``), not a function.
    serializer_class = getattr(model, "serializer_class", None)
    if not isinstance(serializer_class, type):
        serializer_class = serializer if isinstance(serializer, type) else None
    if isinstance(serializer, type):
        serializer = None

    templates = options.get("groups")
    if isinstance(templates, str):
        templates = [templates]
    group_templates = tuple(t for t in templates or () if isinstance(t, str))

    return WatchedModel(
        model=model,
        label=model._meta.label,
        tracker=bind_tracker(model, tracked),
        payload_fields=payload_fields,
        group_templates=group_templates,
        events=event_set,
        serializer=serializer,
        has_get_group_name=callable(getattr(model, "get_group_name", None)),
        has_group_name=hasattr(model, "group_name"),
        has_push_data=callable(getattr(model, "get_push_notification_data", None)),
        serializer_class=serializer_class,
        encoder=encoder_class(getattr(model, "encoder", None)),
    )


watched_models = WatchedModels()
