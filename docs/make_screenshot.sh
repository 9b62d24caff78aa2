#!/usr/bin/env bash
# Regenerate docs/_static/demo.png (the picture in the README and the docs):
# the browser test that changes a card in the admin takes it from the live
# demo page in headless Chromium, with the in-memory layer, and copies it here.
# Needs the machine's Chromium (apt-get install chromium); tests/run installs
# Playwright.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || {
    echo "Chromium is not installed (apt-get install chromium)" >&2
    exit 1
}
RPS_LAYER=memory RPS_REQUIRE_BROWSER=1 RPS_UPDATE_DOCS_SCREENSHOT=1 \
    tests/run --run-slow -q -p no:randomly \
    "tests/browser/test_demo_live.py::test_admin_changes_show_up_live"
echo "wrote docs/_static/demo.png"
