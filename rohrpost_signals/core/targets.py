"""Which watched models, and which object, a group name stands for.

The default policy needs more than "some model can produce this name": it
asks for the producing model's ``view`` permission, on the object when the
name points at one. A group points at one object when its template has a
single placeholder over the primary key or another unique field
(``order-{pk}``, the default ``order-<pk>``); any other template
(``customer-{customer_id}-orders``, a static ``announcements``) names a
collection, checked with the model-level permission.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from . import groups as group_names
from .watching import WatchedModel, watched_models


@dataclass(frozen=True)
class Target:
    """A model that may send to a group, and the object the group names (if one)."""

    watched: WatchedModel
    #: ``{field: text}`` that finds the one object, or None for a collection group.
    lookup: dict[str, str] | None

    def get_object(self) -> models.Model | None:
        """The object the group names; None if it does not exist (or the value is invalid)."""
        if self.lookup is None:
            return None
        found = _preloaded.get()
        if found is not None:
            [(field, value)] = self.lookup.items()
            obj = found.get((self.watched.model, field, value))
            if obj is not None:
                return obj
        manager = self.watched.model._default_manager
        try:
            return manager.filter(**self.lookup).first()
        except (ValueError, TypeError, ValidationError):  # "x" for a UUID primary key
            return None


@dataclass(frozen=True)
class _Rule:
    watched: WatchedModel
    pattern: re.Pattern[str]
    # Placeholder name in the pattern -> field lookup; set when it names one object.
    unique_field: str | None


def _unique_field(model: type[models.Model], name: str) -> str | None:
    """The lookup name if ``name`` is the pk or a unique field of ``model``."""
    if name == "pk":
        return "pk"
    try:
        field: Any = model._meta.get_field(name)
    except FieldDoesNotExist:
        field = next((f for f in model._meta.concrete_fields if f.attname == name), None)
    if field is None or not getattr(field, "concrete", False):
        return None
    if field.primary_key:
        return "pk"
    if field.unique and not field.is_relation:
        return str(field.name)
    return None


def _rule(watched: WatchedModel, template: str) -> _Rule | None:
    model = watched.model
    try:
        roots = group_names.template_fields(template)
    except ValueError:
        return None
    unique = None
    if len(roots) == 1:
        parts = list(string.Formatter().parse(template))
        simple = [p[1] for p in parts if p[1] is not None]
        if simple == roots:  # "{pk}", not "{customer.email}" or "{pk!r}"
            unique = _unique_field(model, roots[0])
    pattern = group_names.template_pattern(model, template)
    if unique is not None:
        # The same pattern with the one placeholder captured.
        literal_parts = []
        for literal, field_name, _spec, _conversion in string.Formatter().parse(template):
            literal_parts.append(re.escape(literal))
            if field_name is not None:
                single = group_names.template_pattern(model, "{" + field_name + "}")
                literal_parts.append(f"(?P<value>{single.pattern})")
        pattern = re.compile("".join(literal_parts))
    return _Rule(watched, pattern, unique)


def _rules_of(watched: WatchedModel) -> list[_Rule]:
    if watched.has_get_group_name:
        return []  # any name at all: such groups need a policy of their own
    if watched.has_group_name:
        static = getattr(watched.model, "group_name", None)
        templates = [static] if isinstance(static, str) else []
    elif watched.group_templates:
        templates = list(watched.group_templates)
    else:
        templates = [f"{watched.model.__name__.lower()}-{{pk}}"]  # the default name
    return [rule for rule in (_rule(watched, t) for t in templates) if rule is not None]


class _Cache:
    def __init__(self) -> None:
        self.watched: list[WatchedModel] = []
        self.rules: list[_Rule] = []

    def rules_for(self, current: list[WatchedModel]) -> list[_Rule]:
        # watched_models builds new WatchedModel objects whenever settings change.
        if len(current) != len(self.watched) or any(
            a is not b for a, b in zip(current, self.watched, strict=True)
        ):
            self.rules = [rule for watched in current for rule in _rules_of(watched)]
            self.watched = current
        return self.rules


_cache = _Cache()


#: Objects loaded ahead for a re-check: (model, lookup field, text) -> object.
_preloaded: contextvars.ContextVar[dict[tuple[Any, str, str], models.Model] | None] = (
    contextvars.ContextVar("rohrpost_signals_preloaded", default=None)
)


@contextlib.contextmanager
def preloaded(groups: Iterable[str]) -> Iterator[None]:
    """Load the objects ``groups`` name with one query per model, for the block.

    A socket re-checking its subscriptions asks for one object per group;
    this turns those lookups into one ``__in`` query per model and field.
    Anything not found here is looked up one by one as usual.
    """
    wanted: dict[tuple[Any, str], set[str]] = {}
    for group in groups:
        for target in targets_of(group):
            if target.lookup is not None:
                [(field, value)] = target.lookup.items()
                wanted.setdefault((target.watched.model, field), set()).add(value)
    found: dict[tuple[Any, str, str], models.Model] = {}
    for (model, field), values in wanted.items():
        if len(values) < 2:
            continue
        try:
            for obj in model._default_manager.filter(**{f"{field}__in": list(values)}):
                key = obj.pk if field == "pk" else getattr(obj, field)
                found[(model, field, str(key))] = obj
        except (ValueError, TypeError, ValidationError):
            continue  # one value the field rejects: look them up one by one
    token = _preloaded.set(found)
    try:
        yield
    finally:
        _preloaded.reset(token)


def targets_of(group: str) -> list[Target]:
    """Every watched model whose group rule yields exactly ``group``; [] if none."""
    found = []
    for rule in _cache.rules_for(list(watched_models)):
        match = rule.pattern.fullmatch(group)
        if match is None:
            continue
        lookup = {rule.unique_field: match["value"]} if rule.unique_field else None
        found.append(Target(rule.watched, lookup))
    return found
