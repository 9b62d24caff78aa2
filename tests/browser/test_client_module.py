"""The client's ES module build (rohrpost.mjs) in real Chromium against a real server.

A page of the demo, logged in, loads the module with a ``<script
type="module">`` static import from the static URL, subscribes to a card's
group and receives the admin's change to that card: the module resolves in
a browser, the server answers it, and the listener API works there
(``on()`` returns an unsubscribe function, ``addEventListener`` gets a
``RohrpostEvent``).
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
from tests.browser.pages import LIVE, admin_edit_card, log_in

pytestmark = pytest.mark.slow

MODULE_PAGE = """
import { RohrpostClient, RohrpostEvent } from "/static/rohrpost_signals/rohrpost.mjs";

const seen = { updates: [], events: [], stopped: [], subscribed: null, error: null };
window.moduleTest = seen;
const client = new RohrpostClient("/ws/rohrpost/");
client.on("__GROUP__", (update, message) => seen.updates.push([update, message.type]));
const stop = client.on("__GROUP__", (update) => seen.stopped.push(update));
stop();
client.addEventListener("subscription-update", (event) => {
  seen.events.push(event instanceof RohrpostEvent && event.data.group);
});
client.subscribe("__GROUP__", { timeout: 10000 }).then(
  (reply) => { seen.subscribed = reply; },
  (error) => { seen.error = [error.message, error.serverCode]; },
);
"""


def test_the_es_module_build_runs_in_chromium(browser: Any, server: DemoServer) -> None:
    card_id = server.card_id("Write the release notes")
    group = f"card-{card_id}"
    page = log_in(browser, server.url, "demo")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_script_tag(content=MODULE_PAGE.replace("__GROUP__", group), type="module")
    page.wait_for_function(
        "window.moduleTest && (window.moduleTest.subscribed || window.moduleTest.error)"
    )
    state = page.evaluate("window.moduleTest")
    assert state["error"] is None, state
    assert state["subscribed"]["group"] == group

    admin = log_in(browser, server.url, "demo")
    admin_edit_card(admin, card_id, title="Write the release notes for 1.0")
    page.wait_for_function("window.moduleTest.updates.length > 0", timeout=LIVE)
    state = page.evaluate("window.moduleTest")
    [[update, frame_type]] = state["updates"]
    assert frame_type == "subscription-update"
    assert (update["group"], update["type"]) == (group, "update")
    assert update["object"]["title"] == "Write the release notes for 1.0"
    if "seq" in state["subscribed"]:
        assert update["seq"] == state["subscribed"]["seq"] + 1
    assert state["stopped"] == []  # the listener whose unsubscribe function ran got nothing
    assert state["events"] == [group]
    assert errors == []
    expect(page.locator("body")).to_be_visible()


def test_the_template_tag_binds_a_client_to_the_pages_groups(
    browser: Any, server: DemoServer
) -> None:
    from django.template import Context, Template

    card_id = server.card_id("Freeze the API")
    group = f"card-{card_id}"
    tag = Template("{% load rohrpost %}{% rohrpost_client groups=groups %}").render(
        Context({"groups": [group, "card-999999"]})
    )
    page = log_in(browser, server.url, "demo")
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    page.set_content(
        "<!doctype html><title>tag</title>" + tag + "<script>"
        "window.tagged = []; window.refused = [];"
        f' rohrpost.on("{group}", (update) => window.tagged.push(update.object.title));'
        ' rohrpost.on("error", (error) => window.refused.push(error.group));'
        "</script>"
    )
    # The page's own script ran after the tag: the client was there, synchronously.
    page.wait_for_function(f'window.rohrpost.groups().includes("{group}")')
    admin = log_in(browser, server.url, "demo")
    admin_edit_card(admin, card_id, title="Freeze the API today")
    page.wait_for_function("window.tagged.length > 0", timeout=LIVE)
    assert page.evaluate("window.tagged") == ["Freeze the API today"]
    # A group the user may not follow is refused, said in the console, and not kept.
    page.wait_for_function("window.refused.length > 0")
    assert page.evaluate("window.refused") == ["card-999999"]
    assert page.evaluate("window.rohrpost.groups()") == [group]
    assert any("card-999999" in text for text in warnings), warnings
