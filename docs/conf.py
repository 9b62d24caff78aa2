"""Sphinx configuration for the rohrpost_signals documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html``
(``.ci/stages/10-docs.sh`` does exactly that, so any warning fails CI).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# autodoc imports the package, which needs configured Django settings. A
# minimal in-memory configuration is enough: nothing is saved or sent here.
import django  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "channels",
            "rohrpost_signals",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()

import rohrpost_signals  # noqa: E402

project = "rohrpost_signals"
author = "rohrpost_signals developers"
copyright = "2026, rohrpost_signals developers"
release = rohrpost_signals.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_theme = "furo"
html_title = f"rohrpost_signals {release}"
html_static_path = ["_static"]
pygments_style = "friendly"
pygments_dark_style = "monokai"

# Every cross-reference must resolve: a typo in :rohrpost-setting:`...` or a
# renamed function fails the build instead of rendering as plain text.
nitpicky = True
nitpick_ignore_regex = [
    # Type hints from the standard library and third-party packages that
    # have no inventory here (asgiref, channels' Python objects).
    ("py:class", r"(asgiref|channels|model_utils)\..*"),
    # Type variables and private aliases that autodoc prints in signatures.
    ("py:class", r"rohrpost_signals\..*\.(H|M|Handler|Policy|Serializer)"),
    ("py:class", r"(H|M|Handler|Policy|Serializer)"),
    ("py:class", r"rohrpost_signals\.protocols\.jsonrpc\.(methods\.F|frames\.Call)"),
    # The dataclass signature of dispatch.Stats shows its lock's factory.
    ("py:class", r"_thread\.allocate_lock"),
    ("py:class", r"rohrpost_signals\.testing\.Notification"),
]

# -- intersphinx, offline ------------------------------------------------------
# CI and the development machines have no route to docs.djangoproject.com or
# readthedocs.io, and a failed inventory download is a warning, which -W turns
# into a failed build. Each mapping therefore names a local inventory FIRST:
# intersphinx stops at the first location that loads, so the network is never
# tried while the file is there, and the links still point at the published
# docs (the URL is the first element). The local files are small extracts of
# the real inventories, made by docs/_inventories/refresh.py from the copies
# Debian ships; see that script to refresh them.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", (str(HERE / "_inventories" / "python.inv"),)),
    "django": (
        "https://docs.djangoproject.com/en/stable/",
        (str(HERE / "_inventories" / "django.inv"),),
    ),
    "channels": (
        "https://channels.readthedocs.io/en/stable/",
        (str(HERE / "_inventories" / "channels.inv"),),
    ),
}

# -- autodoc -------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autoclass_content = "both"


def setup(app: Any) -> dict[str, Any]:
    # Django's docs define :setting:, :django-admin: and friends; declaring
    # them lets intersphinx resolve e.g. :setting:`django:INSTALLED_APPS`.
    app.add_crossref_type("setting", "setting", indextemplate="pair: %s; setting")
    app.add_crossref_type("django-admin", "djadmin", indextemplate="pair: %s; django-admin")
    # Our own objects: the drift test (tests/test_docs.py) reads these
    # directives to check that every ROHRPOST key, model option and check id
    # of the code is documented, and cross-references to them must resolve.
    app.add_object_type(
        "rohrpost-setting", "rohrpost-setting", indextemplate="pair: %s; ROHRPOST setting"
    )
    app.add_object_type(
        "rohrpost-option", "rohrpost-option", indextemplate="pair: %s; ROHRPOST model option"
    )
    app.add_object_type("rohrpost-check", "rohrpost-check", indextemplate="pair: %s; system check")
    return {"parallel_read_safe": True}
