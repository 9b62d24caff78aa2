"""The demo in headless Chromium against a real ASGI server.

Changes are made from outside the page under test: in the Django admin in a
second browser context (the in-memory layer lives inside the server process,
so the change has to happen there), and with Redis also from ``manage.py
shell`` in another process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

try:
    from playwright.sync_api import expect
except ImportError:
    if os.environ.get("RPS_REQUIRE_BROWSER") == "1":
        raise
    pytest.skip("Playwright is not installed", allow_module_level=True)

from tests.browser.conftest import ROOT, DemoServer
from tests.browser.pages import (
    LIVE,
    admin_add_card,
    admin_delete_card,
    admin_edit_card,
    card,
    log_in,
    open_live_board,
    updates,
)

pytestmark = pytest.mark.slow


def pushed(page: Any, group: str, kind: str, card_id: int) -> list[dict[str, Any]]:
    return [
        u
        for u in updates(page)
        if u["group"] == group and u["type"] == kind and u["object"]["id"] == card_id
    ]


def test_admin_changes_show_up_live(browser: Any, server: DemoServer, artifacts: Path) -> None:
    launch = server.board_id("Launch")
    screencast = server.card_id("Record the screencast")
    page = open_live_board(browser, server.url, "demo", boards=2)
    row = card(page, screencast)
    expect(row.locator(".card-title")).to_have_text("Record the screencast")
    todo = page.locator(f'.board[data-board-id="{launch}"] .column[data-status="todo"]')
    expect(todo).to_contain_text("Record the screencast")
    admin = log_in(browser, server.url, "demo")

    # Update: title, status and assignee change in place, and the card moves column.
    admin_edit_card(
        admin, screencast, title="Record the launch screencast", status="doing", assignee="demo"
    )
    expect(row.locator(".card-title")).to_have_text("Record the launch screencast", timeout=LIVE)
    expect(row.locator(".card-assignee")).to_have_text("demo")
    doing = page.locator(f'.board[data-board-id="{launch}"] .column[data-status="doing"]')
    expect(doing.locator(f'[data-card-id="{screencast}"]')).to_be_visible()
    [update] = pushed(page, f"board-{launch}-cards", "update", screencast)
    assert update["object"]["updated_fields"] == ["assignee", "status", "title"]
    assert update["object"]["assignee"] == "demo"
    page.wait_for_timeout(300)  # let the highlight settle a little for the picture
    page.screenshot(path=str(artifacts / f"live-update-{server.layer}.png"))
    if os.environ.get("RPS_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(
            artifacts / f"live-update-{server.layer}.png", ROOT / "docs" / "_static" / "demo.png"
        )

    # Create: a new card appears in its column without a reload.
    admin_add_card(admin, "Launch", "Order the stickers")
    expect(todo.get_by_text("Order the stickers")).to_be_visible(timeout=LIVE)
    stickers = server.card_id("Order the stickers")
    assert pushed(page, f"board-{launch}-cards", "create", stickers)

    # Delete: the row goes away.
    admin_delete_card(admin, stickers)
    expect(card(page, stickers)).to_have_count(0, timeout=LIVE)
    assert pushed(page, f"board-{launch}-cards", "delete", stickers)
    # Nothing was reloaded: the page still holds every update it received.
    assert page.evaluate("window.rohrpostDemo.synced") == 2


def test_change_from_another_process(browser: Any, server: DemoServer) -> None:
    """``manage.py shell`` saves through the ORM; Redis carries it to the server."""
    if server.layer != "redis":
        pytest.skip("the in-memory layer does not reach across processes")
    website = server.board_id("Website")
    rss = server.card_id("Fix the broken RSS feed")
    page = open_live_board(browser, server.url, "demo", boards=2)
    server.manage(
        "shell",
        "-c",
        "from board.models import Card; "
        f"c = Card.objects.get(pk={rss}); c.title = 'RSS feed fixed'; c.status = 'done'; c.save()",
    )
    row = card(page, rss)
    expect(row.locator(".card-title")).to_have_text("RSS feed fixed", timeout=LIVE)
    done = page.locator(f'.board[data-board-id="{website}"] .column[data-status="done"]')
    expect(done.locator(f'[data-card-id="{rss}"]')).to_be_visible()
    assert pushed(page, f"board-{website}-cards", "update", rss)


def test_client_reconnects_and_resubscribes_after_a_server_restart(
    browser: Any, server: DemoServer
) -> None:
    launch = server.board_id("Launch")
    venue = server.card_id("Book the launch party venue")
    page = open_live_board(browser, server.url, "demo", boards=2)
    groups_before = sorted(page.evaluate("window.rohrpostDemo.client.groups()"))
    assert len(groups_before) == 4

    server.kill()
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline", timeout=LIVE)
    server.start()  # same port, same database; the in-memory layer starts empty
    page.wait_for_function("window.rohrpostDemo.resubscribed >= 1", timeout=60_000)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.rohrpostDemo.client.reconnects") >= 1
    assert sorted(page.evaluate("window.rohrpostDemo.client.groups()")) == groups_before
    # The in-memory layer's history died with the server: every group needs a
    # reload. Redis kept it: every group resumes, with nothing to replay.
    if server.layer == "redis":
        assert sorted(page.evaluate("window.rohrpostDemo.resumed")) == groups_before
        assert page.evaluate("window.rohrpostDemo.resyncs") == []
        assert page.evaluate("window.rohrpostDemo.synced") == 2
    else:
        # Wait for the reloads, so that what comes next can only reach the page as a push.
        page.wait_for_function("window.rohrpostDemo.resyncs.length >= 4")
        page.wait_for_function("window.rohrpostDemo.synced >= 4")
    seen_before = len(updates(page))

    admin = log_in(browser, server.url, "demo")
    admin_edit_card(admin, venue, title="Venue booked", status="done")
    expect(card(page, venue).locator(".card-title")).to_have_text("Venue booked", timeout=LIVE)
    after = updates(page)[seen_before:]
    assert [u["object"]["id"] for u in after if u["group"] == f"board-{launch}-cards"] == [venue]


def test_non_members_get_no_updates_for_a_board(browser: Any, server: DemoServer) -> None:
    launch = server.board_id("Launch")  # demo and alice, not bob
    website = server.board_id("Website")  # demo and bob
    freeze = server.card_id("Freeze the API")  # on Launch
    landing = server.card_id("New landing page")  # on Website

    bob = open_live_board(browser, server.url, "bob", boards=1)
    alice = open_live_board(browser, server.url, "alice", boards=2)
    assert bob.locator(".board").evaluate_all("els => els.map(e => Number(e.dataset.boardId))") == [
        website
    ]
    # Asking for the board by hand is refused too, by the server's policy.
    refusals = bob.evaluate(
        """async (groups) => {
            const out = [];
            for (const group of groups) {
                try { await window.rohrpostDemo.client.subscribe({group}); out.push("subscribed"); }
                catch (error) { out.push(error.message); }
            }
            return out;
        }""",
        [f"board-{launch}-cards", f"board-{launch}", f"card-{freeze}"],
    )
    assert refusals == [
        f"Permission denied for group 'board-{launch}-cards'.",
        f"Permission denied for group 'board-{launch}'.",
        f"Permission denied for group 'card-{freeze}'.",
    ]

    admin = log_in(browser, server.url, "demo")
    admin_edit_card(admin, freeze, title="API frozen for good")
    # A later change bob may see: once it is on his page, the earlier one
    # would have been too (same server, same sending queue, same socket).
    admin_edit_card(admin, landing, title="Landing page v2")
    expect(card(bob, landing).locator(".card-title")).to_have_text("Landing page v2", timeout=LIVE)
    # Alice is a member: the Launch change did go out, just not to bob.
    expect(card(alice, freeze).locator(".card-title")).to_have_text(
        "API frozen for good", timeout=LIVE
    )

    bob_groups = {u["group"] for u in updates(bob)}
    assert bob_groups == {f"board-{website}-cards"}
    assert card(bob, freeze).count() == 0
    assert "API frozen for good" not in bob.content()


def test_changes_from_a_second_tab(browser: Any, server: DemoServer) -> None:
    """The page's own buttons save through views; every open page follows."""
    website = server.board_id("Website")
    https = server.card_id("Move to HTTPS only")
    page = open_live_board(browser, server.url, "demo", boards=2)
    other = open_live_board(browser, server.url, "bob", boards=1)
    detail = log_in(browser, server.url, "demo")
    detail.goto(f"/cards/{https}/")
    detail.wait_for_function("window.rohrpostDemo.synced >= 1")
    expect(detail.locator("#connection")).to_have_attribute("data-state", "live")

    column = f'.board[data-board-id="{website}"] .column[data-status="%s"]'
    other.locator(column % "done").locator(
        f'[data-card-id="{https}"] button[data-move="todo"]'
    ).click()
    expect(page.locator(column % "todo").locator(f'[data-card-id="{https}"]')).to_be_visible(
        timeout=LIVE
    )
    expect(detail.locator(".card-status")).to_have_text("To do", timeout=LIVE)

    form = other.locator(f'.board[data-board-id="{website}"] form.add-card')
    form.locator("input[name=title]").fill("Renew the certificate")
    form.locator("button").click()
    expect(page.locator(column % "todo").get_by_text("Renew the certificate")).to_be_visible(
        timeout=LIVE
    )
    expect(
        card(page, server.card_id("Renew the certificate")).locator(".card-assignee")
    ).to_have_text("bob")

    card(other, https).locator("button.delete").click()
    expect(card(page, https)).to_have_count(0, timeout=LIVE)
    expect(detail.locator(".deleted-note")).to_be_visible(timeout=LIVE)
