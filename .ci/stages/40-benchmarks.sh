#!/usr/bin/env bash
# Benchmark smoke run: installs the comparison libraries (rohrpost, DCRF) and
# the harness's tools, then runs the quick mode. It must finish and print its
# tables; no timing is asserted (CI machines are too noisy for that).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
    python3 -m venv .venv
fi
"$PY" -m pip install --quiet -e ".[bench]"
"$PY" -m benchmarks --quick
test -s benchmarks/results/quick.txt
"$PY" -m benchmarks.jsonrpc --quick
test -s benchmarks/results/jsonrpc-quick.txt
"$PY" -m benchmarks.recheck --quick
test -s benchmarks/results/recheck-quick.txt
