"""The page catches up on what changed while the server was down.

The server is killed with the page open, cards and a board are changed
through the ORM in another process (``manage.py shell`` against the same
database and channel layer), and the server is started again. With Redis the
history survived: the client resumes every group with ``since`` and the page
applies the replayed changes without reloading anything. With the in-memory
layer the history died with the server: the server answers
``resync-required`` and the page reloads its boards. Either way the page
ends up showing every change, and the test checks which path it took.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

try:
    from playwright.sync_api import expect
except ImportError:
    if os.environ.get("RPS_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("Playwright is not installed", allow_module_level=True)

from tests.browser.conftest import DemoServer
from tests.browser.pages import LIVE, admin_edit_card, card, log_in, open_live_board, updates

pytestmark = pytest.mark.slow

# What happens while the server is down: every kind of change, in one process
# whose exit flushes its messages (to Redis, or to an in-memory layer nobody reads).
WHILE_AWAY = """
from board.models import Board, Card
launch = Board.objects.get(name="Launch")
notes = Card.objects.get(title="Write the release notes")
notes.title = "Release notes written"
notes.status = "done"
notes.save()
venue = Card.objects.get(title="Book the launch party venue")
venue.status = "doing"
venue.save()
venue.title = "Venue booked, catering next"
venue.save()
Card.objects.create(board=launch, title="Print the badges")
Card.objects.get(title="Freeze the API").delete()
launch.name = "Launch day"
launch.save()
"""


def test_changes_made_while_the_server_was_down_reach_the_page(
    browser: Any, server: DemoServer
) -> None:
    launch = server.board_id("Launch")
    notes = server.card_id("Write the release notes")
    venue = server.card_id("Book the launch party venue")
    freeze = server.card_id("Freeze the API")
    cards_group, board_group = f"board-{launch}-cards", f"board-{launch}"

    page = open_live_board(browser, server.url, "demo", boards=2)
    groups = sorted(page.evaluate("window.rohrpostDemo.client.groups()"))
    resume_points = page.evaluate(
        "(groups) => groups.map((g) => window.rohrpostDemo.client.lastSeq(g))", groups
    )
    assert all(isinstance(seq, int) for seq in resume_points), resume_points
    seen_before = len(updates(page))

    server.kill()
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline", timeout=LIVE)
    server.manage("shell", "-c", WHILE_AWAY)
    server.start()  # same port, same database, same Redis prefix
    page.wait_for_function("window.rohrpostDemo.resubscribed >= 1", timeout=60_000)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    # Every change made while the server was away is on the page.
    board = page.locator(f'.board[data-board-id="{launch}"]')
    expect(board.locator(".board-name")).to_have_text("Launch day", timeout=LIVE)
    done = board.locator('.column[data-status="done"]')
    doing = board.locator('.column[data-status="doing"]')
    todo = board.locator('.column[data-status="todo"]')
    expect(done.locator(f'[data-card-id="{notes}"] .card-title')).to_have_text(
        "Release notes written", timeout=LIVE
    )
    expect(doing.locator(f'[data-card-id="{venue}"] .card-title')).to_have_text(
        "Venue booked, catering next", timeout=LIVE
    )
    expect(todo.get_by_text("Print the badges")).to_be_visible(timeout=LIVE)
    expect(card(page, freeze)).to_have_count(0, timeout=LIVE)
    expect(board.locator(".card")).to_have_count(4)

    state = page.evaluate(
        """() => ({
            resumed: window.rohrpostDemo.resumed.slice().sort(),
            resyncs: window.rohrpostDemo.resyncs.slice().sort(),
            synced: window.rohrpostDemo.synced,
        })"""
    )
    caught_up = updates(page)[seen_before:]
    if server.layer == "redis":
        # Replayed from the history in Redis: no reload, and exactly the changes, in order.
        assert state == {"resumed": groups, "resyncs": [], "synced": 2}
        badges = server.card_id("Print the badges")
        on_cards = [u for u in caught_up if u["group"] == cards_group]
        assert [(u["type"], u["object"]["id"], u["object"]["title"]) for u in on_cards] == [
            ("update", notes, "Release notes written"),
            ("update", venue, "Book the launch party venue"),
            ("update", venue, "Venue booked, catering next"),
            ("create", badges, "Print the badges"),
            ("delete", freeze, "Freeze the API"),
        ]
        start = resume_points[groups.index(cards_group)]
        assert [u["seq"] for u in on_cards] == list(range(start + 1, start + 6))
        [rename] = [u for u in caught_up if u["group"] == board_group]
        assert rename["object"]["name"] == "Launch day"
        assert rename["seq"] == resume_points[groups.index(board_group)] + 1
        assert len(caught_up) == 6
    else:
        # The in-memory history died with the server: told to resync, the page reloaded.
        assert state["resyncs"] == groups
        assert state["resumed"] == groups  # it asked to resume every group...
        assert state["synced"] >= 4  # ...and reloaded both boards instead
        assert caught_up == []  # nothing could be replayed

    # Live again from the point it resumed at: the next change arrives as a push.
    before_live = len(updates(page))
    if server.layer == "redis":
        server.manage(
            "shell",
            "-c",
            f"from board.models import Card; c = Card.objects.get(pk={notes}); "
            "c.title = 'Release notes published'; c.save()",
        )
    else:
        # The in-memory layer reaches the page only from inside the server.
        admin_edit_card(log_in(browser, server.url, "demo"), notes, title="Release notes published")
    expect(card(page, notes).locator(".card-title")).to_have_text(
        "Release notes published", timeout=LIVE
    )
    [live] = [u for u in updates(page)[before_live:] if u["group"] == cards_group]
    assert live["object"]["id"] == notes
    assert live["seq"] == page.evaluate(f"window.rohrpostDemo.client.lastSeq('{cards_group}')")
    assert page.evaluate("window.rohrpostDemo.client.duplicates") == 0
    assert sorted(page.evaluate("window.rohrpostDemo.resyncs")) == state["resyncs"]
