"""Real Django models standing in for the mock models of rohrpost's own conftest.

rohrpost's tests ask for objects named like these (the group names they
assert come from the class names) with a ``name`` of ``"test object name"``;
each is opted in with our ``NotifyOnChange``, as a project would after
changing its imports. Saving one again changes nothing, as with their mocks;
``compattouched`` has the same models with an ``auto_now`` field, as most
real models have, so that every save changes something.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from rohrpost_signals.mixins import NotifyOnChange


class ExampleSerializer:
    """A serializer class as rohrpost's conftest has: anything with ``.data``."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    @property
    def data(self) -> dict[str, Any]:
        return {"serialized_id": self.obj.pk, "serialized_name": self.obj.name}


class Example(NotifyOnChange, models.Model):
    name = models.CharField(max_length=100, default="test object name")

    class Meta:
        abstract = True


class WithGroupAttribute:
    group_name = "attribute-example-{pk}"


class WithGroupMethod:
    def get_group_name(self, message_type: str) -> str:
        return f"method-example-{self.pk}"  # type: ignore[attr-defined]


class WithData:
    def get_push_notification_data(
        self, updated_fields: Any = None, message_type: Any = None
    ) -> dict[str, Any]:
        name = self.name  # type: ignore[attr-defined]
        return {"extra_name": name, "extra_name_backwards": name[::-1]}


class WithSerializer:
    serializer_class = ExampleSerializer


class PlainExampleModel(Example):
    pass


class ModelWithAttr(WithGroupAttribute, Example):
    pass


class ModelWithMethod(WithGroupMethod, Example):
    pass


class ModelWithMethodAndAttr(WithGroupMethod, WithGroupAttribute, Example):
    pass


class ModelWithData(WithData, Example):
    pass


class ModelWithSerializer(WithSerializer, Example):
    pass


class ModelWithSerializerAndData(WithSerializer, WithData, Example):
    pass
