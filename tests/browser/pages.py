"""What a person does in the demo, as Playwright steps."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

# How long the page may take to show a change pushed to it. Generous, because
# a slow CI machine must not fail; the test never measures it.
LIVE = 10_000


def log_in(browser: Any, base_url: str, username: str) -> Page:
    """A fresh browser context with ``username`` logged in (password = username)."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 760})
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", username)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    return page


def open_live_board(browser: Any, base_url: str, username: str, boards: int) -> Page:
    """Log in and wait until the board page has subscribed and loaded ``boards`` boards."""
    page = log_in(browser, base_url, username)
    page.wait_for_function(f"window.rohrpostDemo && window.rohrpostDemo.synced >= {boards}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


def card(page: Page, card_id: int) -> Any:
    return page.locator(f'[data-card-id="{card_id}"]')


def updates(page: Page) -> list[dict[str, Any]]:
    """Every subscription-update the page's client received, in order."""
    result: list[dict[str, Any]] = page.evaluate("window.rohrpostDemo.updates")
    return result


# ---- the Django admin, in its own browser context


def admin_edit_card(admin: Page, card_id: int, **fields: str) -> None:
    admin.goto(f"/admin/board/card/{card_id}/change/")
    if "title" in fields:
        admin.fill("#id_title", fields["title"])
    if "status" in fields:
        admin.select_option("#id_status", fields["status"])
    if "assignee" in fields:
        admin.select_option("#id_assignee", label=fields["assignee"])
    admin.click("input[name=_save]")
    expect(admin.locator(".messagelist .success")).to_be_visible()


def admin_add_card(admin: Page, board: str, title: str) -> None:
    admin.goto("/admin/board/card/add/")
    admin.select_option("#id_board", label=board)
    admin.fill("#id_title", title)
    admin.click("input[name=_save]")
    expect(admin.locator(".messagelist .success")).to_be_visible()


def admin_delete_card(admin: Page, card_id: int) -> None:
    admin.goto(f"/admin/board/card/{card_id}/delete/")
    admin.click("form input[type=submit]")
    expect(admin.locator(".messagelist .success")).to_be_visible()
