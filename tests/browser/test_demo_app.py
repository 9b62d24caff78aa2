"""The demo app without a browser: its policy, payload, views and seed command.

Fast (no server, no Chromium), so the default test run guards what the
browser tests rely on.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.core.management import call_command
from django.test import Client

from board.models import Board, Card
from board.realtime import can_subscribe
from rohrpost_signals.testing import capture_notifications
from shop.models import Customer, Order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # The real hasher is slow on purpose; these tests make many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people() -> dict[str, User]:
    return {name: User.objects.create_user(name, password=name) for name in ("ann", "ben")}


@pytest.fixture
def board(people: dict[str, User]) -> Board:
    board = Board.objects.create(name="Roadmap")
    board.members.add(people["ann"])
    return board


@pytest.fixture
def card(board: Board, people: dict[str, User]) -> Card:
    return Card.objects.create(board=board, title="Plan", assignee=people["ann"])


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_members_may_subscribe_to_their_board_and_its_cards(
    people: dict[str, User], board: Board, card: Card
) -> None:
    for group in (f"board-{board.pk}", f"board-{board.pk}-cards", f"card-{card.pk}"):
        assert can_subscribe(people["ann"], group, {}) is True, group
        assert can_subscribe(people["ben"], group, {}) is False, group
        assert can_subscribe(AnonymousUser(), group, {}) is False, group
        assert can_subscribe(None, group, {}) is False, group


def test_unknown_boards_and_cards_are_refused(people: dict[str, User], card: Card) -> None:
    assert can_subscribe(people["ann"], f"board-{card.board_id + 100}-cards", {}) is False
    assert can_subscribe(people["ann"], f"card-{card.pk + 100}", {}) is False
    assert can_subscribe(people["ann"], f"board-{card.board_id}-cards-x", {}) is False


def test_other_groups_follow_the_library_default_policy(people: dict[str, User]) -> None:
    order = Order.objects.create(customer=Customer.objects.create(name="c"))
    group = f"order-{order.pk}"  # shop.Order, a watched model
    assert can_subscribe(people["ben"], group, {}) is False  # no view permission
    people["ben"].user_permissions.add(Permission.objects.get(codename="view_order"))
    ben = User.objects.get(pk=people["ben"].pk)  # permissions are cached per instance
    assert can_subscribe(ben, group, {}) is True
    assert can_subscribe(ben, "articles-news", {}) is False  # no model names it
    assert can_subscribe(ben, "board-x", {}) is False
    assert can_subscribe(AnonymousUser(), group, {}) is False


def test_a_card_change_reaches_its_own_group_and_its_boards(
    board: Board, card: Card, people: dict[str, User]
) -> None:
    with capture_notifications() as sent:
        card.status = Card.Status.DONE
        card.assignee = people["ben"]
        card.save()
    assert sorted(sent.groups) == sorted([f"card-{card.pk}", f"board-{board.pk}-cards"])
    for notification in sent:
        assert notification.type == "update"
        assert notification.object == {
            "id": card.pk,
            "board": board.pk,
            "title": "Plan",
            "status": "done",
            "assignee": "ben",
            "updated_fields": ["assignee", "status"],
        }


def test_touching_only_unwatched_fields_sends_nothing(card: Card) -> None:
    with capture_notifications() as sent:
        card.save(update_fields=["updated_at"])
    assert sent == []


def test_creating_and_deleting_are_sent_to_the_board(board: Board) -> None:
    with capture_notifications() as sent:
        new = Card.objects.create(board=board, title="Ship")
        pk = new.pk
    assert [(n.group, n.type) for n in sent.for_group(f"board-{board.pk}-cards")] == [
        (f"board-{board.pk}-cards", "create")
    ]
    with capture_notifications() as sent:
        new.delete()
    [deleted] = sent.for_group(f"board-{board.pk}-cards")
    assert (deleted.type, deleted.object["id"], deleted.object["assignee"]) == ("delete", pk, None)


def test_the_page_lists_only_the_users_boards(people: dict[str, User], card: Card) -> None:
    other = Board.objects.create(name="Hidden plans")
    other.members.add(people["ben"])
    page = logged_in(people["ann"]).get("/")
    assert page.status_code == 200
    state = page.context["state"]
    assert [b["name"] for b in state["boards"]] == ["Roadmap"]
    assert state["boards"][0]["cards"][0]["title"] == "Plan"
    assert b"Hidden plans" not in page.content


def test_anonymous_visitors_are_sent_to_the_login(card: Card) -> None:
    answer = Client().get("/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/boards/{board}.json", None),
        ("get", "/cards/{card}/", None),
        ("get", "/cards/{card}.json", None),
        ("post", "/boards/{board}/cards/", {"title": "x"}),
        ("post", "/cards/{card}/move/", {"status": "done"}),
        ("post", "/cards/{card}/delete/", None),
    ],
)
def test_non_members_cannot_read_or_change_a_board(
    people: dict[str, User], card: Card, method: str, url: str, data: Any
) -> None:
    client = logged_in(people["ben"])
    with capture_notifications() as sent:
        answer = getattr(client, method)(url.format(board=card.board_id, card=card.pk), data)
    assert answer.status_code == 404
    assert sent == []
    card.refresh_from_db()
    assert (card.title, card.status) == ("Plan", "todo")


def test_members_change_cards_through_the_page_endpoints(
    people: dict[str, User], board: Board, card: Card
) -> None:
    client = logged_in(people["ann"])
    with capture_notifications() as sent:
        assert client.post(f"/cards/{card.pk}/move/", {"status": "doing"}).status_code == 204
    assert [n.object["updated_fields"] for n in sent] == [["status"], ["status"]]
    assert client.post(f"/cards/{card.pk}/move/", {"status": "lost"}).status_code == 400
    created = client.post(f"/boards/{board.pk}/cards/", {"title": "  Write docs  "})
    assert created.status_code == 201
    new = Card.objects.get(pk=created.json()["id"])
    assert (new.title, new.assignee) == ("Write docs", people["ann"])
    assert client.post(f"/boards/{board.pk}/cards/", {"title": " "}).status_code == 400
    assert client.post(f"/cards/{new.pk}/delete/").status_code == 204
    assert not Card.objects.filter(pk=new.pk).exists()
    assert client.get(f"/boards/{board.pk}.json").json()["cards"][0]["status"] == "doing"


def test_seed_demo_can_run_twice() -> None:
    call_command("seed_demo")
    call_command("seed_demo")
    assert Board.objects.count() == 3
    assert Card.objects.count() == 9
    demo = User.objects.get(username="demo")
    assert demo.is_superuser
    assert demo.check_password("demo")
    bob = User.objects.get(username="bob")
    assert [b.name for b in bob.boards.all()] == ["Website"]
    call_command("seed_demo", "--reset")
    assert Card.objects.count() == 9


def test_the_page_mentions_manage_py_shell_only_when_it_would_work(
    people: dict[str, User], settings: Any
) -> None:
    client = logged_in(people["ann"])
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert b"manage.py shell" not in client.get("/").content
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
    assert b"manage.py shell" in client.get("/").content


def test_every_page_links_a_favicon_that_exists() -> None:
    from django.contrib.staticfiles import finders

    page = Client().get("/accounts/login/").content.decode()
    icon = re.search(r'<link rel="icon" href="/static/([^"]+)"', page)
    assert icon, "no favicon link: browsers ask for /favicon.ico and get a 404"
    assert finders.find(icon.group(1))
