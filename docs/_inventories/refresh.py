"""Rebuild the small intersphinx inventories in this folder.

The docs are built offline (CI has no route to docs.djangoproject.com or
readthedocs.io), so ``docs/conf.py`` reads Django's and Channels' object
inventories from here instead of downloading them. This script cuts them
down from the inventories that Debian ships with the HTML docs (Python's
too, for the standard library names in our signatures):

    apt-get install python-django-doc python-django-channels-doc python3-doc
    python docs/_inventories/refresh.py

Django's pages are published as ``page/`` rather than ``page.html``, so its
URIs are rewritten on the way. Entries keep their original names, so a
reference such as ``:setting:`INSTALLED_APPS``` resolves exactly as it would
against the downloaded inventory.
"""

from __future__ import annotations

import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DJANGO_SOURCE = Path("/usr/share/doc/python-django-doc/html/objects.inv")
CHANNELS_SOURCE = Path("/usr/share/doc/python-django-channels-doc/html/objects.inv")
PYTHON_SOURCE = Path("/usr/share/doc/python3.11/html/objects.inv")

# Python objects worth linking from our pages and signatures.
DJANGO_PY_PREFIXES = (
    "django.apps",
    "django.conf",
    "django.contrib.auth.models",
    "django.contrib.staticfiles",
    "django.core.checks",
    "django.core.serializers.json",
    "django.db.models.Model",
    "django.db.models.Field",
    "django.db.models.query.QuerySet",
    "django.db.models.signals",
    "django.db.transaction",
    "django.db.DEFAULT_DB_ALIAS",
    "django.test",
    "django.utils.module_loading",
)
DJANGO_STD_ROLES = ("std:setting", "std:django-admin", "std:doc")

# The standard library names that appear in our signatures.
PYTHON_PREFIXES = (
    "asyncio.AbstractEventLoop",
    "asyncio.Task",
    "collections.abc.",
    "contextlib.",
    "dataclasses.",
    "json.",
    "logging.Logger",
    "typing.",
    # Methods of built-in types, e.g. str.format.
    "dict.",
    "list.",
    "str.",
)

# autodoc names objects by the module that defines them; Django documents
# them where they are imported from. Each alias gets the same target.
DJANGO_ALIASES = {
    "django.db.models.Model": "django.db.models.base.Model",
    "django.db.models.Field": "django.db.models.fields.Field",
}

_LINE = re.compile(r"(.+?)\s+(\S+)\s+(-?\d+)\s+?(\S*)\s+(.*)")

PACKAGES = "python-django-doc python-django-channels-doc python3-doc"

Entry = tuple[str, str, str, str, str]  # name, domain:role, priority, uri, display name


def read(path: Path) -> tuple[dict[str, str], list[Entry]]:
    raw = path.read_bytes()
    header_lines = raw.split(b"\n", 4)
    header = {}
    for line in header_lines[:4]:
        text = line.decode()
        if text.startswith("# Project: "):
            header["project"] = text.removeprefix("# Project: ")
        elif text.startswith("# Version: "):
            header["version"] = text.removeprefix("# Version: ")
    body = zlib.decompress(header_lines[4]).decode()
    entries = []
    for line in body.splitlines():
        match = _LINE.fullmatch(line.rstrip())
        if match:
            name, role, priority, uri, dispname = match.groups()
            entries.append((name, role, priority, uri, dispname))
    return header, entries


def write(path: Path, project: str, version: str, entries: Iterable[Entry]) -> int:
    lines = sorted({" ".join(entry) for entry in entries})
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = zlib.compress(("\n".join(lines) + "\n").encode(), 9)
    path.write_bytes(header.encode() + body)
    return len(lines)


def dirhtml(uri: str) -> str:
    """``ref/settings.html#x`` -> ``ref/settings/#x`` (Django's published URLs)."""
    page, hash_, anchor = uri.partition("#")
    if page.endswith("index.html"):
        page = page.removesuffix("index.html")
    elif page.endswith(".html"):
        page = page.removesuffix(".html") + "/"
    return page + hash_ + anchor


def django_entries(entries: list[Entry]) -> Iterator[Entry]:
    for name, role, priority, uri, dispname in entries:
        keep = role in DJANGO_STD_ROLES or (
            role.startswith("py:") and name.startswith(DJANGO_PY_PREFIXES)
        )
        if keep:
            uri = dirhtml(uri.replace("$", name))
            yield name, role, priority, uri, dispname
            if role == "py:class" and name in DJANGO_ALIASES:
                yield DJANGO_ALIASES[name], role, priority, uri, name


def python_entries(entries: list[Entry]) -> Iterator[Entry]:
    for entry in entries:
        name, role = entry[0], entry[1]
        builtin = "." not in name and role in ("py:class", "py:function", "py:exception")
        if builtin or (role.startswith("py:") and name.startswith(PYTHON_PREFIXES)):
            yield entry


def refresh(source: Path, target: str, select: Callable[[list[Entry]], Iterable[Entry]]) -> None:
    header, entries = read(source)
    count = write(HERE / target, header["project"], header["version"], select(entries))
    print(f"{target}: {count} of {len(entries)} entries from {source}")


def main() -> int:
    missing = [p for p in (DJANGO_SOURCE, CHANNELS_SOURCE, PYTHON_SOURCE) if not p.exists()]
    if missing:
        print("missing: " + ", ".join(map(str, missing)), file=sys.stderr)
        print(f"apt-get install {PACKAGES}", file=sys.stderr)
        return 1
    refresh(DJANGO_SOURCE, "django.inv", django_entries)
    refresh(CHANNELS_SOURCE, "channels.inv", list)
    refresh(PYTHON_SOURCE, "python.inv", python_entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
