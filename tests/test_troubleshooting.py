"""docs/troubleshooting.rst quotes only what the library really prints.

Every entry (a section of the page) must quote at least one thing the
library emits, and each quote must be found in the code as it is now:

* ``:Log:`` an example log line; it must match the %-format string of a
  string literal in the package (f-strings count, their fields being
  placeholders; the placeholders stand for the example's values), possibly
  one nested in another's placeholder, and those literals must account for
  most of the line; so rewording a message in the code fails here;
* ``:Error code:`` a code of an error reply, one of
  ``rohrpost_signals.exceptions.ERROR_CODES`` whose constant another module
  of the package uses;
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

from rohrpost_signals import exceptions
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
    """Every string literal in the package as a %-template (an f-string's fields become %s)."""
    strings: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.add(node.value)
            elif isinstance(node, ast.JoinedStr):
                strings.add(
                    "".join(
                        part.value.replace("%", "%%")
                        if isinstance(part, ast.Constant) and isinstance(part.value, str)
                        else "%s"
                        for part in node.values
                    )
                )
    return strings


def format_pattern(template: str) -> re.Pattern[str]:
    """A regex that matches what ``template % args`` can print; each placeholder is a group."""
    parts = []
    position = 0
    for match in CONVERSION.finditer(template):
        parts.append(re.escape(template[position : match.start()].replace("%%", "%")))
        parts.append("(.+?)")
        position = match.end()
    parts.append(re.escape(template[position:].replace("%%", "%")))
    return re.compile("".join(parts), re.DOTALL)


class Template:
    def __init__(self, text: str) -> None:
        self.pattern = format_pattern(text)
        self.literal = len(CONVERSION.sub("", text).replace("%%", "%"))


def log_templates() -> list[Template]:
    # Only literals long enough to be a message; placeholders alone say nothing.
    return [Template(text) for text in package_strings() if len(CONVERSION.sub("", text)) >= 12]


def explained(line: str, templates: list[Template], depth: int = 2) -> int:
    """How many characters of ``line`` the code's literal text accounts for."""
    best = 0
    for template in templates:
        match = template.pattern.fullmatch(line)
        if not match:
            continue
        inner = 0
        if depth > 1:
            inner = sum(explained(group, templates, depth - 1) for group in match.groups())
        best = max(best, template.literal + inner)
    return best


def printed_by_the_code(line: str, templates: list[Template]) -> bool:
    # Example values (ids, error texts) may be long; the code's own words must be most of it.
    return explained(line, templates) >= 0.5 * len(line)


def codes_in_use() -> set[str]:
    """The error codes whose constant some module other than exceptions.py uses."""
    names = {
        name: value
        for name, value in vars(exceptions).items()
        if name.isupper() and isinstance(value, str) and value in ERROR_CODES
    }
    used: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "exceptions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in names:
                used.add(names[node.attr])
            elif isinstance(node, ast.Name) and node.id in names:
                used.add(names[node.id])
    return used


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
        assert printed_by_the_code(line, templates), (
            f"{title!r} quotes a log line the code no longer prints: {line!r}"
        )
    for code in fields.get("Error code", []):
        assert code in ERROR_CODES, f"{title!r}: {code!r} is not in exceptions.ERROR_CODES"
        assert code in codes_in_use(), f"{title!r}: no code outside exceptions.py sends {code!r}"
    for check in fields.get("Check", []):
        assert check in check_ids(), f"{title!r}: the package emits no check {check!r}"
    for event in fields.get("Client event", []):
        assert event in client_events(), f"{title!r}: the client emits no event {event!r}"


def test_the_matcher_tells_a_reworded_line_apart() -> None:
    templates = [
        Template("Could not send %s to group %r through channel layer %r: %s"),
        Template("%s (further ones are counted and logged every %g s)"),
        Template("%d rohrpost messages were still queued at exit."),
    ]
    sent = "Could not send x to group 'g' through channel layer 'default': E"
    assert printed_by_the_code(sent, templates)
    later = " (further ones are counted and logged every 10 s)"
    assert printed_by_the_code(sent + later, templates)
    assert not printed_by_the_code(sent.replace("send", "deliver"), templates)
    # A generic wrapper alone does not vouch for what it wraps.
    made_up = "The history of group 'g' was lost and nobody knows why, again"
    assert not printed_by_the_code(made_up + later, templates)
    assert printed_by_the_code("3 rohrpost messages were still queued at exit.", templates)
