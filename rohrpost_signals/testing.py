"""Test helpers for projects that use rohrpost_signals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.test import TestCase

from .core import changes, dispatch


@dataclass(frozen=True)
class Notification:
    """One message as it would reach the channel layer."""

    group: str
    text: str

    @property
    def message(self) -> dict[str, Any]:
        """The decoded frame."""
        value: dict[str, Any] = json.loads(self.text)
        return value

    @property
    def type(self) -> str:
        """``create``, ``update`` or ``delete`` (``data.type``)."""
        return str(self.message["data"]["type"])

    @property
    def object(self) -> Any:
        """The payload (``data.object``)."""
        return self.message["data"]["object"]

    @property
    def method(self) -> str:
        """The JSON-RPC notification's ``method`` (the rohrpost ``type``)."""
        return str(self.message["type"])

    @property
    def params(self) -> Any:
        """The JSON-RPC notification's ``params`` (the rohrpost ``data``)."""
        return self.message.get("data")


class CapturedNotifications(list[Notification]):
    """The captured :class:`Notification` objects, in the order they were sent."""

    def for_group(self, group: str) -> list[Notification]:
        """The notifications sent to ``group``."""
        return [n for n in self if n.group == group]

    @property
    def groups(self) -> list[str]:
        """The group of each notification, in order."""
        return [n.group for n in self]


@contextmanager
def capture_notifications(
    *, send: bool = False, run_on_commit: bool | None = None, using: str = DEFAULT_DB_ALIAS
) -> Iterator[CapturedNotifications]:
    """Collect the messages the block sends to groups.

    ``send=False`` (the default) keeps them from the channel layer. Messages
    go out only after commit; inside a test's transaction (``TestCase``,
    ``pytest.mark.django_db``) the commit never happens, so by default the
    helper runs the ``on_commit`` hooks registered in the block when it ends,
    as ``TestCase.captureOnCommitCallbacks(execute=True)`` does.
    """
    captured = CapturedNotifications()

    def intercept(item: dispatch.Outgoing) -> bool:
        if item.event_type != dispatch.EVENT_TYPE:
            return False  # an event for the consumers (a re-check), not a notification
        captured.append(Notification(item.group, item.text))
        return not send

    if run_on_commit is None:
        run_on_commit = connections[using].in_atomic_block
    if run_on_commit:
        # A change made earlier in this transaction opened a batch whose commit
        # hook sits before the block's hooks, where the capture below would not
        # run it: the block's changes get a batch of their own.
        setattr(connections[using], changes._BATCH_ATTR, None)
    dispatch.interceptors.append(intercept)
    try:
        with ExitStack() as stack:
            if run_on_commit:
                stack.enter_context(TestCase.captureOnCommitCallbacks(using=using, execute=True))
            yield captured
    finally:
        dispatch.interceptors.remove(intercept)


class FakeConsumer:
    """A stand-in consumer for handler tests, like rohrpost's ``rohrpost.tests.Consumer``.

    Pass it to :func:`~rohrpost_signals.main.handle_rohrpost_message` or to a
    handler; ``data`` holds every frame sent to it, decoded, until ``close()``.
    ``scope`` is what a handler reads as ``consumer.scope`` (``user`` and so on).
    """

    def __init__(self, scope: dict[str, Any] | None = None) -> None:
        self.data: list[Any] = []
        self.closed = False
        self.scope: dict[str, Any] = scope if scope is not None else {}

    def send(self, text_data: str) -> None:
        if not self.closed:
            self.data.append(json.loads(text_data))

    def close(self) -> None:
        self.closed = True
