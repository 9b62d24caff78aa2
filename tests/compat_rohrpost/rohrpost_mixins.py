"""What ``rohrpost.mixins`` resolves to in the harness.

Our mixins, plus the two names rohrpost's mixin tests monkeypatch. This app
does not call them from ``save()`` (it queues messages to a sender), so the
harness's ``conftest.py`` hands every message queued during a test to
``send_to_group`` as rohrpost's mixins did, with the encoded text, after
commit. ``on_transaction_commit`` is here only so the patch has a target:
the tests run in autocommit, where this app sends at once, as the patched
rohrpost did.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db.transaction import on_commit as on_transaction_commit

from rohrpost_signals.mixins import (
    NotifyBase,
    NotifyOnChange,
    NotifyOnCreate,
    NotifyOnDelete,
    NotifyOnUpdate,
)

__all__ = [
    "NotifyBase",
    "NotifyOnChange",
    "NotifyOnCreate",
    "NotifyOnDelete",
    "NotifyOnUpdate",
    "on_transaction_commit",
    "send_to_group",
]


def send_to_group(*, group_name: str, message: Any) -> None:
    """rohrpost's ``send_to_group(group_name, message)``, until a test patches it."""
    async_to_sync(get_channel_layer().group_send)(
        group_name, {"type": "rohrpost.message", "message": message}
    )
