"""System checks for the rohrpost-style model attributes ``encoder`` and ``serializer_class``.

rohrpost read both from its mixin models; this app honours them on every
watched model. A value it cannot use is ignored, so say so at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Tags
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from .core.jsoncompat import encoder_class

W060 = "rohrpost_signals.W060"  # a model's encoder attribute is not a JSONEncoder subclass
W061 = "rohrpost_signals.W061"  # a model's serializer_class attribute is not a class


def _is_field(model: type[models.Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def check_model_attributes(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    from .core.watching import watched_models

    warnings: list[CheckMessage] = []
    for watched in watched_models:
        model = watched.model
        encoder = getattr(model, "encoder", None)
        if encoder is not None and not _is_field(model, "encoder") and not encoder_class(encoder):
            warnings.append(
                CheckWarning(
                    f"{watched.label}.encoder is {encoder!r}, not a json.JSONEncoder "
                    "subclass; it is ignored.",
                    hint="Name an encoder class, as rohrpost's mixins expected.",
                    obj=model,
                    id=W060,
                )
            )
        serializer = getattr(model, "serializer_class", None)
        if (
            serializer is not None
            and not _is_field(model, "serializer_class")
            and not isinstance(serializer, type)
        ):
            warnings.append(
                CheckWarning(
                    f"{watched.label}.serializer_class is {serializer!r}, not a class; "
                    "it is ignored.",
                    hint="Name a serializer class: its instances' .data is the payload.",
                    obj=model,
                    id=W061,
                )
            )
    return warnings


def register() -> None:
    from django.core.checks import register as register_check

    register_check(Tags.models)(check_model_attributes)
