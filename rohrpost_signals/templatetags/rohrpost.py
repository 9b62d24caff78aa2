"""``{% rohrpost_client %}``: the browser client, bound to the page's groups."""

from __future__ import annotations

import json
from collections.abc import Iterable

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

register = template.Library()

CLIENT_SCRIPT = "rohrpost_signals/rohrpost.js"


def _group_names(groups: str | Iterable[object] | None) -> list[str]:
    if groups is None or groups == "":
        return []
    if isinstance(groups, str):
        return [groups]
    # Any iterable of names; a pk or other scalar becomes its text.
    return [str(group) for group in groups]


@register.simple_tag
def rohrpost_client(
    groups: str | Iterable[object] | None = None,
    url: str = "/ws/rohrpost/",
    name: str = "rohrpost",
) -> str:
    """Render the client's ``<script>`` tag with the page's groups in data attributes.

    The script (``rohrpost.js``) creates a client for ``url``, subscribes it
    to each group and stores it as ``window[name]``. Everything is in
    attributes, so no inline code is needed (a strict CSP allows it).
    """
    return format_html(
        '<script src="{}" data-rohrpost-url="{}" data-rohrpost-groups="{}"'
        ' data-rohrpost-name="{}"></script>',
        static(CLIENT_SCRIPT),
        url,
        json.dumps(_group_names(groups)),
        name,
    )
