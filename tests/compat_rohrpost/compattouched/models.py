"""The models of ``compatapp`` with a ``modified = DateTimeField(auto_now=True)``."""

from __future__ import annotations

from compatapp.models import WithData, WithGroupAttribute, WithGroupMethod, WithSerializer
from django.db import models

from rohrpost_signals.mixins import NotifyOnChange


class Example(NotifyOnChange, models.Model):
    name = models.CharField(max_length=100, default="test object name")
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


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
