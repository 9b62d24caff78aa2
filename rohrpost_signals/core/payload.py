"""What a change sends: the groups it goes to and the object it carries."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from .encoding import encode, encode_with
from .groups import default_group_name, format_template, is_valid_group_name, template_fields
from .watching import WatchedModel

logger = logging.getLogger("rohrpost_signals")


def group_names_for(instance: models.Model, watched: WatchedModel, kind: str) -> list[str]:
    """Model hook > ``group_name`` attribute > ``groups`` setting > ``<model>-<pk>``.

    Names that Channels would reject are logged and left out.
    """
    if watched.has_get_group_name:
        # By keyword, as rohrpost called it.
        names: Any = instance.get_group_name(message_type=kind)  # type: ignore[attr-defined]
    elif watched.has_group_name:
        names = instance.group_name  # type: ignore[attr-defined]
        if isinstance(names, str):
            # As in rohrpost: "order-{pk}" names one group per object.
            try:
                names = names.format(pk=instance.pk)
            except (KeyError, IndexError, ValueError) as exc:
                logger.error(
                    "group_name %r of %s pk=%s is not a valid template: %r",
                    names,
                    watched.label,
                    instance.pk,
                    exc,
                )
                names = []
    elif watched.group_templates:
        names = []
        for template in watched.group_templates:
            try:
                names.append(format_template(template, instance))
            except (AttributeError, KeyError, IndexError, ValueError) as exc:
                logger.error(
                    "Group template %r failed for %s pk=%s: %r",
                    template,
                    watched.label,
                    instance.pk,
                    exc,
                )
    else:
        names = [default_group_name(instance)]
    if isinstance(names, str):
        names = [names]
    valid = []
    for name in names or ():
        if is_valid_group_name(name):
            if name not in valid:
                valid.append(name)
        else:
            logger.error(
                "Skipping invalid group name %r for %s pk=%s: group names must be "
                "shorter than 100 characters of ASCII letters, digits, '-', '_' or '.'.",
                name,
                watched.label,
                instance.pk,
            )
    return valid


def moved_groups(
    instance: models.Model, watched: WatchedModel, updated_fields: Iterable[str] | None
) -> tuple[str, ...]:
    """The object's groups that stay the same when an update moves it elsewhere.

    An update moves the object when it changes a field that one of the
    ``groups`` templates reads (a card's ``board_id``): the subscribers of its
    other groups (``card-5``) may no longer be allowed to see it. Groups from
    ``get_group_name()`` or ``group_name`` are not analysed.
    """
    if not updated_fields or not watched.group_templates:
        return ()
    changed: set[str] = set()
    for name in updated_fields:
        changed.add(name)
        try:
            changed.add(instance._meta.get_field(name).attname)  # type: ignore[union-attr]
        except (FieldDoesNotExist, AttributeError):
            continue
    reads = [(t, _template_reads(t)) for t in watched.group_templates]
    if not any(r and r & changed for _t, r in reads):
        return ()
    stable = []
    for template, read in reads:
        if read is not None and not read & changed:
            try:
                stable.append(format_template(template, instance))
            except (AttributeError, KeyError, IndexError, ValueError):
                continue
    return tuple(name for name in dict.fromkeys(stable) if is_valid_group_name(name))


@functools.lru_cache(maxsize=1024)
def _template_reads(template: str) -> frozenset[str] | None:
    # Parsed once per template: this runs on every update of a watched model.
    try:
        return frozenset(template_fields(template))
    except ValueError:
        return None


def object_data(
    instance: models.Model,
    watched: WatchedModel,
    kind: str,
    updated_fields: Sequence[str] | None,
) -> Any:
    """Model hook > serializer class > ``serializer`` setting > ``fields`` > ``{"id": pk}``.

    The serializer class is the model's ``serializer_class``, else a class
    given as the ``serializer`` setting; its ``.data`` is the payload.

    On update, ``updated_fields`` is added unless the payload already has it.
    """
    fields_arg = list(updated_fields) if updated_fields is not None else None
    if watched.has_push_data:
        # By keyword, as rohrpost called it: keyword-only hooks work.
        data = instance.get_push_notification_data(  # type: ignore[attr-defined]
            updated_fields=fields_arg, message_type=kind
        )
    elif watched.serializer_class is not None:
        data = watched.serializer_class(instance).data
    elif watched.serializer is not None:
        data = watched.serializer(instance, fields_arg, kind)
    elif watched.payload_fields is not None:
        data = {"id": instance.pk}
        for field in watched.payload_fields:
            data[field.name] = field.value_from_object(instance)
    else:
        data = {"id": instance.pk}
    if kind == "update" and updated_fields is not None and isinstance(data, dict):
        data.setdefault("updated_fields", sorted(updated_fields))
    return data


def encode_object(watched: WatchedModel, data: Any) -> str:
    """The payload's JSON: the model's own ``encoder`` class if it names one."""
    return encode(data) if watched.encoder is None else encode_with(watched.encoder, data)
