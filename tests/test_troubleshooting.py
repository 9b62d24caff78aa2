"""docs/troubleshooting.rst quotes only what the library really prints.

Every entry (a section of the page) must quote at least one thing the
library emits, and each quote must be found in the code as it is now:

* ``:Log:`` an example log line; it must match the %-format string of a
  string literal in the package (the placeholders stand for the example's
  values), so rewording a message in the code fails here;
* ``:Error code:`` a code of an error reply, one of
  ``rohrpost_signals.exceptions.ERROR_CODES``;
* ``:Check:`` a system check id that the package emits;
* ``:Client event:`` an event the JavaScript client emits.

Everything is read from the code, so codes and log lines added by other
changes are found without editing this test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rohrpost_signals.exceptions import ERROR_CODES

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "troubleshooting.rst"
PACKAGE = ROOT / "rohrpost_signals"
CLIENT = PACKAGE / "static" / "rohrpost_signals" / "rohrpost.mjs"
FIELDS = ("Log", "Error code", "Check", "Client event")

# printf-style conversions as logging uses them: %s, %r, %d, %5.1f, ...
CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa]")


def entries() -> dict[str, dict[str, list[str]]]:
    """``{section title: {field: [values]}}`` for every section of the page."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    found: dict[str, dict[str, list[str]]] = {}
    title = None
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", following) and len(following) >= len(line):
            title = line.strip()
            found[title] = {}
            continue
        field = re.match(r"^:([A-Za-z ]+): (.+)$", line)
        if field and title is not None:
            found[title].setdefault(field.group(1), []).append(_unquote(field.group(2)))
    return found


def _unquote(value: str) -> str:
    value = value.strip()
    literal = re.fullmatch(r"``(.+)``", value)
    if literal:
        return literal.group(1)
    role = re.fullmatch(r":[\w:-]+:`(.+)`", value)
    return role.group(1) if role else value


def package_strings() -> set[str]:
    """Every string literal in the package (implicit concatenation is one literal)."""
    strings: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.add(node.value)
    return strings


def format_pattern(template: str) -> re.Pattern[str]:
    """A regex that matches what ``template % args`` can print."""
    parts = []
    position = 0
    for match in CONVERSION.finditer(template):
        parts.append(re.escape(template[position : match.start()].replace("%%", "%")))
        parts.append(".+?")
        position = match.end()
    parts.append(re.escape(template[position:].replace("%%", "%")))
    return re.compile("".join(parts), re.DOTALL)


def log_templates() -> list[re.Pattern[str]]:
    # Only literals long enough to be a message; placeholders alone say nothing.
    return [
        format_pattern(text) for text in package_strings() if len(CONVERSION.sub("", text)) >= 12
    ]


def check_ids() -> set[str]:
    ids: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        ids |= set(re.findall(r"""["'](rohrpost_signals\.[EW]\d{3})["']""", path.read_text()))
    return ids


def client_events() -> set[str]:
    return set(re.findall(r"""_emit\(\s*"([a-z-]+)\"""", CLIENT.read_text(encoding="utf-8")))


ISSUE_ENTRIES = (
    "No updates arrive",
    "Updates arrive only from some processes",
    "HTTP 403 when the socket connects",
    "Permission denied for a group",
    "``resync-required`` again and again",
    "Messages over capacity",
    "A worker that will not stop",
)


def test_the_page_has_the_entries_newcomers_need() -> None:
    assert set(ISSUE_ENTRIES) <= set(entries())


@pytest.mark.parametrize("title", list(entries()))
def test_every_entry_quotes_what_the_library_prints(title: str) -> None:
    fields = entries()[title]
    unknown = set(fields) - set(FIELDS)
    assert not unknown, f"{title}: unknown fields {unknown}"
    assert any(fields.get(name) for name in FIELDS), f"{title!r} quotes nothing the library prints"

    templates = log_templates()
    for line in fields.get("Log", []):
        assert any(t.fullmatch(line) for t in templates), (
            f"{title!r} quotes a log line the code no longer prints: {line!r}"
        )
    for code in fields.get("Error code", []):
        assert code in ERROR_CODES, f"{title!r}: {code!r} is not in exceptions.ERROR_CODES"
    for check in fields.get("Check", []):
        assert check in check_ids(), f"{title!r}: the package emits no check {check!r}"
    for event in fields.get("Client event", []):
        assert event in client_events(), f"{title!r}: the client emits no event {event!r}"


def test_the_matcher_tells_a_reworded_line_apart() -> None:
    pattern = format_pattern("Could not send %s to group %r through channel layer %r: %s")
    assert pattern.fullmatch("Could not send x to group 'g' through channel layer 'default': E")
    assert not pattern.fullmatch("Could not deliver x to group 'g' through channel layer 'd': E")
    assert format_pattern("%d rohrpost messages were still queued at exit.").fullmatch(
        "3 rohrpost messages were still queued at exit."
    )
