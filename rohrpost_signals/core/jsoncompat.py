"""What rohrpost's encoder accepted beyond Django's, and project-chosen encoders.

rohrpost 4 encoded with a ``TolerantJSONEncoder`` that turned any mapping
into an object and any other collection (sets, ``UserList``...) into an
array. Projects relied on it, so our encoder does the same after Django's
types; models and consumers that name their own encoder class
(``encoder`` / ``json_encoder``, as in rohrpost) get it through
``encoding.encode_with``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

__all__ = ["TolerantJSONEncoder", "encoder_class", "tolerant_default"]


def tolerant_default(value: Any) -> Any:
    """rohrpost's fallbacks: mappings become objects, other collections arrays."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Collection):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class TolerantJSONEncoder(DjangoJSONEncoder):
    """Django's encoder (dates, decimals as strings, UUIDs), then rohrpost's fallbacks."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return tolerant_default(o)


def encoder_class(value: object) -> type[json.JSONEncoder] | None:
    """``value`` if it is a ``JSONEncoder`` subclass, else ``None``."""
    if isinstance(value, type) and issubclass(value, json.JSONEncoder):
        return value
    return None
