"""Opt a model in from code, as with the original rohrpost mixins.

The mixins only mark the model; nothing overrides ``save()`` or ``delete()``.
The app registry finds marked models at start-up and connects the signals.
"""

from __future__ import annotations

from typing import ClassVar


class NotifyBase:
    """Common base: the set of events the model sends."""

    rohrpost_events: ClassVar[frozenset[str]] = frozenset()


class NotifyOnCreate(NotifyBase):
    rohrpost_events: ClassVar[frozenset[str]] = frozenset({"create"})


class NotifyOnUpdate(NotifyBase):
    rohrpost_events: ClassVar[frozenset[str]] = frozenset({"update"})


class NotifyOnDelete(NotifyBase):
    rohrpost_events: ClassVar[frozenset[str]] = frozenset({"delete"})


class NotifyOnChange(NotifyOnCreate, NotifyOnUpdate, NotifyOnDelete):
    rohrpost_events: ClassVar[frozenset[str]] = frozenset({"create", "update", "delete"})


def mixin_events(model: type) -> frozenset[str]:
    """The union of events of every mixin ``model`` inherits from."""
    events: set[str] = set()
    for klass in model.__mro__:
        if issubclass(klass, NotifyBase) and "rohrpost_events" in vars(klass):
            events |= klass.rohrpost_events
    return frozenset(events)
