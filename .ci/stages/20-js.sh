#!/usr/bin/env bash
# Unit tests of the browser client (rohrpost_signals/static/rohrpost_signals/rohrpost.js)
# with node's built-in test runner and a fake WebSocket: no npm packages needed.
set -euo pipefail
if ! command -v node >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
fi
echo "node $(node --version)"
node --test tests/js/*.test.js
