"""The same small model four times, so each library is measured on equal terms.

* ``PlainItem``: nobody watches it (the floor for the save overhead).
* ``SignalsItem``: watched by rohrpost_signals through ``ROHRPOST["MODELS"]``.
* ``RohrpostItem``: rohrpost 4's ``NotifyOnChange`` mixin (overrides ``save()``).
* ``DcrfItem``: observed by DCRF's ``model_observer`` (see ``consumers.py``).

Every notifying variant sends the same object: ``id``, ``name`` and ``counter``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from rohrpost.mixins import NotifyOnChange as RohrpostNotifyOnChange


class BaseItem(models.Model):
    name = models.CharField(max_length=50, default="item")
    counter = models.IntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"

    def as_payload(self) -> dict[str, Any]:
        return {"id": self.pk, "name": self.name, "counter": self.counter}


class PlainItem(BaseItem):
    pass


class SignalsItem(BaseItem):
    pass


class RohrpostItem(RohrpostNotifyOnChange, BaseItem):  # type: ignore[misc]
    def get_push_notification_data(
        self, updated_fields: Any = None, message_type: Any = None
    ) -> dict[str, Any]:
        return self.as_payload()


class DcrfItem(BaseItem):
    pass


VARIANTS: dict[str, type[BaseItem]] = {
    "plain": PlainItem,
    "signals": SignalsItem,
    "rohrpost": RohrpostItem,
    "dcrf": DcrfItem,
}
