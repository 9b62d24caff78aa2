#!/usr/bin/env bash
# rohrpost 4.1.0's own test suite against this library. The pinned sdist is
# downloaded with pip and checked against its sha256; its tests/test_*.py run
# unchanged next to our harness (tests/compat_rohrpost: import aliases from
# rohrpost.* to our modules, the fixtures their conftest had, and the list of
# tests expected to fail, each with the migrating.rst section that explains
# it, marked xfail(strict=True): a listed test that passes fails this stage).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
VERSION="4.1.0"
SHA256="5bf9b5cd6ea3d64f104e2ae763299c28b3ba401b463256bcf38fc3cfa3052c51"
WORK="$(mktemp -d /tmp/rps-rohrpost-compat.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

[ -x .venv/bin/python ] || tests/run --version

echo "--- rohrpost $VERSION sdist"
.venv/bin/python -m pip download --quiet --disable-pip-version-check \
    --no-deps --no-binary :all: "rohrpost==$VERSION" -d "$WORK/dist"
sdist="$WORK/dist/rohrpost-$VERSION.tar.gz"
echo "$SHA256  $sdist" | sha256sum --check --strict -

echo "--- harness and their tests"
mkdir "$WORK/run"
cp -R tests/compat_rohrpost/. "$WORK/run/"
tar -xzf "$sdist" -C "$WORK/run" --strip-components=2 --wildcards "rohrpost-$VERSION/tests/test_*.py"
# Their conftest.py is not in the sdist; ours provides its fixtures. Refuse
# to run if a future sdist brought one that would replace ours.
if tar -tzf "$sdist" | grep -q "^rohrpost-$VERSION/tests/conftest.py$"; then
    echo "the sdist has a tests/conftest.py; the harness needs a look" >&2
    exit 1
fi
ls "$WORK/run"/test_*.py

echo "--- run"
cd "$WORK/run"
PYTHONPATH="$WORK/run:$ROOT" "$ROOT/.venv/bin/python" -m pytest -p no:randomly "$@"
