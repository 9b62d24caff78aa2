"""Group names: validation, templates, and the names a model can produce."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

#: Channels' rule for group names: ASCII letters, digits, ``-``, ``_``, ``.``
#: and shorter than 100 characters.
MAX_GROUP_NAME_LENGTH = 100
_GROUP_NAME_RE = re.compile(r"[A-Za-z0-9\-_.]+")

_INTEGER_PLACEHOLDER = r"-?[0-9]+"
_GENERIC_PLACEHOLDER = r"[A-Za-z0-9\-_.]+"


def is_valid_group_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and len(name) < MAX_GROUP_NAME_LENGTH
        and _GROUP_NAME_RE.fullmatch(name) is not None
    )


def default_group_name(instance: models.Model) -> str:
    return f"{instance.__class__.__name__.lower()}-{instance.pk}"


class _InstanceAttributes(Mapping[str, Any]):
    """Lets ``str.format_map`` read attributes of a model instance."""

    __slots__ = ("_instance",)

    def __init__(self, instance: models.Model) -> None:
        self._instance = instance

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self._instance, key)
        except AttributeError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def format_template(template: str, instance: models.Model) -> str:
    return template.format_map(_InstanceAttributes(instance))


def template_fields(template: str) -> list[str]:
    """The root attribute names a template reads (``customer`` for ``{customer.id}``).

    Raises ``ValueError`` for a malformed template.
    """
    roots = []
    for _literal, field_name, _spec, _conversion in string.Formatter().parse(template):
        if field_name is None:
            continue
        root = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if not root or root.isdigit():
            raise ValueError("positional placeholders are not allowed; name an attribute")
        roots.append(root)
    return roots


def _is_integer_field(model: type[models.Model], name: str) -> bool:
    field: Any
    if name == "pk":
        field = model._meta.pk
    else:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            field = next((f for f in model._meta.concrete_fields if f.attname == name), None)
    if field is None:
        return False
    if field.is_relation and field.many_to_one:
        field = field.target_field
    return isinstance(field, (models.IntegerField, models.AutoField))


def template_pattern(model: type[models.Model], template: str) -> re.Pattern[str]:
    """A regular expression matching every name ``template`` can yield for ``model``.

    A placeholder over an integer field matches only integers; any other
    placeholder matches characters that are valid in a group name.
    """
    parts = []
    for literal, field_name, _spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field_name is None:
            continue
        simple = re.fullmatch(r"\w+", field_name) is not None
        if simple and _is_integer_field(model, field_name):
            parts.append(_INTEGER_PLACEHOLDER)
        else:
            parts.append(_GENERIC_PLACEHOLDER)
    return re.compile("".join(parts))


def default_pattern(model: type[models.Model]) -> re.Pattern[str]:
    pk = _INTEGER_PLACEHOLDER if _is_integer_field(model, "pk") else _GENERIC_PLACEHOLDER
    return re.compile(re.escape(model.__name__.lower()) + "-" + pk)
