#!/usr/bin/env bash
# Build the documentation with every warning as an error. conf.py sets
# nitpicky, so a cross-reference that does not resolve fails too, and the
# intersphinx inventories are read from docs/_inventories (no network).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || tests/run --version
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[docs]"
rm -rf docs/_build
.venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html
echo "docs built without warnings: docs/_build/html/index.html"
