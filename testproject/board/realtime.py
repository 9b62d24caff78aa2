"""What the demo sends for a card, and who may subscribe to which board.

Both are wired up in ``settings.ROHRPOST`` (``serializer`` and
``SUBSCRIBE_POLICY``); the models themselves stay plain. When a board's
members change, :func:`members_changed` has the sockets concerned ask the
policy again (connected in ``apps.py``).
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from rohrpost_signals import reauthorize
from rohrpost_signals.policy import default_policy

from .models import Board, Card


def card_data(card: Card, updated_fields: list[str] | None, message_type: str) -> dict[str, Any]:
    """The card as the page shows it: the assignee by name, not by id."""
    return {
        "id": card.pk,
        "board": card.board_id,
        "title": card.title,
        "status": card.status,
        "assignee": card.assignee.get_username() if card.assignee_id else None,
    }


_BOARD_GROUP = re.compile(r"board-(?P<pk>[0-9]+)(?:-cards)?")
_CARD_GROUP = re.compile(r"card-(?P<pk>[0-9]+)")


def can_subscribe(user: Any, group: str, scope: dict[str, Any]) -> bool:
    """Members see their boards and the cards on them; nobody else does.

    Groups that are not the board app's go to the library's default policy,
    which still refuses anonymous users and names no watched model produces.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if match := _BOARD_GROUP.fullmatch(group):
        return Board.objects.filter(pk=int(match["pk"]), members=user).exists()
    if match := _CARD_GROUP.fullmatch(group):
        return Card.objects.filter(pk=int(match["pk"]), board__members=user).exists()
    return default_policy(user, group, scope)


def members_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """A board lost or gained members: their open sockets re-check their subscriptions."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:  # user.boards.remove(board): the instance is the user
        users = {instance.pk}
    elif action == "post_clear":  # pk_set is None: everybody may have lost the board
        users = None
    else:
        users = set(pk_set or ())
    # After commit: the sockets read the memberships from the database.
    if users is None:
        transaction.on_commit(reauthorize)
    else:
        for pk in users:
            transaction.on_commit(lambda pk=pk: reauthorize(user=pk))
