"""Fill the demo with users, boards and cards so the page is not empty.

Safe to run again: users get their demo passwords back, and boards that
already have cards are left alone (``--reset`` starts them over).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from board.models import Board, Card

# username -> (is the admin user, boards they are a member of)
USERS = {
    "demo": (True, ["Launch", "Website"]),
    "alice": (False, ["Launch", "Secret project"]),
    "bob": (False, ["Website"]),
}

CARDS = {
    "Launch": [
        ("Write the release notes", "doing", "demo"),
        ("Record the screencast", "todo", "alice"),
        ("Book the launch party venue", "todo", None),
        ("Freeze the API", "done", "demo"),
    ],
    "Website": [
        ("New landing page", "doing", "bob"),
        ("Fix the broken RSS feed", "todo", "demo"),
        ("Move to HTTPS only", "done", "bob"),
    ],
    "Secret project": [
        ("Pick a code name", "done", "alice"),
        ("Build the prototype", "doing", "alice"),
    ],
}


class Command(BaseCommand):
    help = "Create the demo users (password = username), boards and cards."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="delete every board and card first"
        )

    @transaction.atomic
    def handle(self, *args: Any, reset: bool = False, **options: Any) -> None:
        if reset:
            Board.objects.all().delete()
        user_model = get_user_model()
        users = {}
        for username, (is_admin, _boards) in USERS.items():
            user, _created = user_model.objects.get_or_create(username=username)
            user.set_password(username)
            user.is_staff = user.is_superuser = is_admin
            user.save()
            users[username] = user
        for name, cards in CARDS.items():
            board, _created = Board.objects.get_or_create(name=name)
            board.members.add(*(users[u] for u, (_a, b) in USERS.items() if name in b))
            if board.cards.exists():
                continue
            for title, status, assignee in cards:
                Card.objects.create(
                    board=board,
                    title=title,
                    status=status,
                    assignee=users[assignee] if assignee else None,
                )
        self.stdout.write(
            f"Seeded {Board.objects.count()} boards and {Card.objects.count()} cards. "
            "Log in as demo/demo (admin); alice/alice and bob/bob see fewer boards."
        )
