"""``{% rohrpost_client %}`` renders the client's script tag bound to the page's groups."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import override_settings


def render(source: str, **context: object) -> str:
    return Template("{% load rohrpost %}" + source).render(Context(context))


def attributes(rendered: str) -> dict[str, str]:
    tag = re.fullmatch(r"<script ([^>]*)></script>", rendered.strip())
    assert tag, rendered
    return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag.group(1))}


def test_a_list_of_groups_becomes_json_in_a_data_attribute() -> None:
    rendered = render("{% rohrpost_client groups=groups %}", groups=["order-5", "orders"])
    attrs = attributes(rendered)
    assert attrs["src"] == "/static/rohrpost_signals/rohrpost.js"
    assert json.loads(attrs["data-rohrpost-groups"]) == ["order-5", "orders"]
    assert attrs["data-rohrpost-url"] == "/ws/rohrpost/"
    assert attrs["data-rohrpost-name"] == "rohrpost"


def test_one_group_name_and_the_options() -> None:
    rendered = render(
        '{% rohrpost_client groups="order-"|add:pk url="/ws/shop/" name="liveOrder" %}', pk="7"
    )
    attrs = attributes(rendered)
    assert json.loads(attrs["data-rohrpost-groups"]) == ["order-7"]
    assert (attrs["data-rohrpost-url"], attrs["data-rohrpost-name"]) == ("/ws/shop/", "liveOrder")


def test_no_groups_still_gives_a_client() -> None:
    assert json.loads(attributes(render("{% rohrpost_client %}"))["data-rohrpost-groups"]) == []


def test_hostile_group_names_cannot_break_out_of_the_attribute() -> None:
    evil = '"><script>alert(1)</script>'
    rendered = render("{% rohrpost_client groups=groups %}", groups=[evil])
    assert "<script>alert" not in rendered
    assert json.loads(attributes(rendered)["data-rohrpost-groups"]) == [evil]


@override_settings(STATIC_URL="https://cdn.example/assets/")
def test_the_script_comes_from_the_static_url() -> None:
    src = attributes(render("{% rohrpost_client groups='a' %}"))["src"]
    assert src == "https://cdn.example/assets/rohrpost_signals/rohrpost.js"


def test_unknown_options_are_a_template_error() -> None:
    with pytest.raises(TemplateSyntaxError):
        render("{% rohrpost_client group='a' %}")
