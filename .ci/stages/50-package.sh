#!/usr/bin/env bash
# Package check: build the sdist and the wheel from a clean copy of the tree,
# `twine check` them, check what is (and is not) inside, rebuild a wheel
# from the sdist, then install the wheel into a fresh virtual environment
# outside the source tree and smoke-test it there: a settings module with
# one watched model, a save captured as a message, the static JavaScript
# client found by collectstatic.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d /tmp/rps-package.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
pip_quiet=(--quiet --disable-pip-version-check)

echo "--- tools"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install "${pip_quiet[@]}" "build>=1.0" "twine>=5" trove-classifiers

echo "--- clean copy of the tree (tracked and new files, nothing git ignores)"
# Building in the work tree would pick up caches and a stale egg-info
# SOURCES.txt; a fresh clone has neither.
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done \
    | tar --null -T - -cf - | tar -xf - -C "$WORK/src"

echo "--- build"
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$WORK/src" > "$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; exit 1; }
if grep -n "Package would be ignored\|SetuptoolsDeprecationWarning" "$WORK/build.log"; then
    echo "setuptools warned about the package configuration (see above)" >&2
    exit 1
fi
ls -l "$WORK/dist"
"$WORK/tools/bin/twine" check --strict "$WORK"/dist/*

echo "--- contents"
"$WORK/tools/bin/python" - "$WORK/dist" <<'PY'
import sys
import tarfile
import zipfile
from pathlib import Path

dist = Path(sys.argv[1])
[wheel] = dist.glob("*.whl")
[sdist] = dist.glob("*.tar.gz")
names = zipfile.ZipFile(wheel).namelist()
problems = []
stray = [n for n in names if not n.startswith(("rohrpost_signals/", "rohrpost_signals-"))]
if stray:
    problems.append(f"wheel has files outside the package: {stray[:10]}")
for needed in (
    "rohrpost_signals/py.typed",
    "rohrpost_signals/static/rohrpost_signals/rohrpost.js",
    "rohrpost_signals/static/rohrpost_signals/rohrpost.mjs",
    "rohrpost_signals/static/rohrpost_signals/rohrpost.d.ts",
    "rohrpost_signals/templatetags/rohrpost.py",
    "rohrpost_signals/apps.py",
    # One module of each subpackage: find_packages must have found them all.
    "rohrpost_signals/core/dispatch.py",
    "rohrpost_signals/protocols/__init__.py",
    "rohrpost_signals/protocols/rohrpost/consumers.py",
    "rohrpost_signals/protocols/jsonrpc/consumers.py",
    "rohrpost_signals/jsonrpc.py",
):
    if needed not in names:
        problems.append(f"wheel lacks {needed}")
if any("/tests/" in n or "testproject" in n for n in names):
    problems.append("wheel contains tests or testproject")

members = [m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m]
for needed in (
    "README.rst",
    "CHANGELOG.rst",
    "LICENSE",
    "setup.cfg",
    "pyproject.toml",
    "rohrpost_signals/static/rohrpost_signals/rohrpost.js",
    "rohrpost_signals/static/rohrpost_signals/rohrpost.mjs",
    "package.json",
    "js/build.mjs",
    "docs/conf.py",
    "tests/test_docs.py",
):
    if needed not in members:
        problems.append(f"sdist lacks {needed}")
junk = [m for m in members if any(p in m for p in (".mypy_cache", "__pycache__", ".sqlite3", "_build/"))]
if junk:
    problems.append(f"sdist has caches or databases: {junk[:10]}")
from email.parser import Parser

from trove_classifiers import classifiers as known

metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
metadata = Parser().parsestr(zipfile.ZipFile(wheel).read(metadata_name).decode())
declared = metadata.get_all("Classifier") or []
unknown = [c for c in declared if c not in known]
if unknown:
    problems.append(f"classifiers PyPI would reject: {unknown}")
if not metadata.get("Requires-Python"):
    problems.append("no Requires-Python in the wheel metadata")
if problems:
    sys.exit("\n".join(problems))
print(f"{wheel.name}: {len(names)} files, package only, static client and py.typed inside")
print(f"{sdist.name}: {len(members)} files, docs and tests included, no caches")
print(f"metadata: {len(declared)} valid classifiers, Requires-Python {metadata['Requires-Python']}")
PY

echo "--- a wheel built from the sdist"
"$WORK/tools/bin/pip" wheel "${pip_quiet[@]}" --no-deps --wheel-dir "$WORK/fromsdist" \
    "$WORK"/dist/*.tar.gz
ls "$WORK/fromsdist"

echo "--- install the wheel into a fresh virtual environment"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install "${pip_quiet[@]}" "$WORK"/dist/*.whl
"$WORK/venv/bin/pip" check

echo "--- smoke test outside the source tree"
mkdir -p "$WORK/smoke/smokeapp"
touch "$WORK/smoke/smokeapp/__init__.py"
cat > "$WORK/smoke/smokeapp/models.py" <<'PY'
from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=100)
    secret = models.CharField(max_length=100, blank=True)
PY
cat > "$WORK/smoke/smokesettings.py" <<'PY'
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECRET_KEY = "package-smoke-test"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "channels",
    "rohrpost_signals",
    "smokeapp",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(HERE / "db.sqlite3")}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
ROHRPOST = {"MODELS": {"smokeapp.Note": {"fields": ["text"]}}}
STATIC_URL = "static/"
STATIC_ROOT = HERE / "static"
USE_TZ = True
PY
cat > "$WORK/smoke/smoke.py" <<'PY'
import os
import sys
from pathlib import Path

os.environ["DJANGO_SETTINGS_MODULE"] = "smokesettings"
import django  # noqa: E402

django.setup()

import rohrpost_signals  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rohrpost_signals.routing import websocket_urlpatterns  # noqa: E402
from rohrpost_signals.testing import capture_notifications  # noqa: E402
from smokeapp.models import Note  # noqa: E402

package = Path(rohrpost_signals.__file__).resolve().parent
source_tree = Path(sys.argv[1]).resolve()
assert source_tree not in package.parents, f"imported from the source tree: {package}"
assert Path(sys.prefix) in package.parents, f"not installed in this venv: {package}"
assert (package / "py.typed").exists(), "py.typed is missing"
for name in ("tests", "testproject"):
    assert not (package.parent / name).exists(), f"{name} was installed"
assert websocket_urlpatterns, "no WebSocket routes"

call_command("check", fail_level="ERROR")
call_command("migrate", run_syncdb=True, verbosity=0)

with capture_notifications() as sent:
    note = Note.objects.create(text="hello", secret="s")
    note.text = "bye"
    note.save()
    note.secret = "t"  # not watched: sends nothing
    note.save()
group = f"note-{note.pk}"
assert [(n.group, n.type) for n in sent] == [(group, "create"), (group, "update")], sent
assert sent[0].object == {"id": note.pk, "text": "hello"}, sent[0].object
assert sent[1].object == {"id": note.pk, "text": "bye", "updated_fields": ["text"]}, sent[1].object
assert sent[1].message["type"] == "subscription-update"

found = finders.find("rohrpost_signals/rohrpost.js")
assert found and Path(found).resolve().is_relative_to(package), found
call_command("collectstatic", interactive=False, verbosity=0)
collected = Path(settings.STATIC_ROOT) / "rohrpost_signals" / "rohrpost.js"
assert collected.read_bytes() == Path(found).read_bytes(), "collectstatic did not copy the client"
assert b"RohrpostClient" in collected.read_bytes()

print(f"smoke test passed: rohrpost_signals {rohrpost_signals.__version__} from {package}")
print(f"  Django {django.get_version()}; captured {[n.type for n in sent]} for {group};")
print(f"  collectstatic -> {collected.relative_to(Path.cwd())}")
PY
(cd "$WORK/smoke" && env -u PYTHONPATH -u DJANGO_SETTINGS_MODULE \
    "$WORK/venv/bin/python" -s smoke.py "$ROOT")
