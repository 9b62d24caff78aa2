#!/usr/bin/env bash
# The demo in headless Chromium against a real ASGI server (tests/browser),
# once with the in-memory channel layer and once with Redis. Chromium is
# Debian's package; Playwright for Python drives it (no browser download).
set -euo pipefail
if ! command -v chromium >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium --version
# tests/run made .venv in the earlier stages; add the browser extra (Playwright).
tests/run --version >/dev/null
.venv/bin/python -m pip install --quiet -e ".[browser]"
export RPS_REQUIRE_BROWSER=1
RPS_LAYER=memory tests/run --run-slow tests/browser
RPS_LAYER=redis tests/run --run-slow tests/browser
echo "screenshots: artifacts/browser/"
