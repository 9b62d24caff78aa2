#!/usr/bin/env bash
# The test passes of CI, run side by side (.ci/pool.py; RPS_CI_JOBS at a
# time, default 2): the README's test command on both databases and both
# channel layers, the slow integration, browser-free load and restart tests
# in the first pass, and the support matrix (.ci/matrix.sh) unless
# RPS_CI_MATRIX=0. Each pass has a PostgreSQL test database and a Redis key
# prefix of its own, named after the pass and this run (RPS_CI_RUN), so
# passes and whole runs side by side never share state, and nothing an
# earlier run left behind is read.
#
#   .ci/tests.sh                  what .ci/run runs
#   RPS_CI_MATRIX=0 .ci/tests.sh  only the four passes
set -euo pipefail
cd "$(dirname "$0")/.."
export RPS_CI_RUN="${RPS_CI_RUN:-$$}"
# Install once before the passes start: side by side, each would create .venv.
tests/run --version >/dev/null

# pass name, then the environment and arguments of tests/run
pass() {
    local name="$1"
    shift
    printf '%s=RPS_PG_TEST_DB=test_rps_ci_%s_%s RPS_REDIS_PREFIX=rps-ci-%s-%s %s tests/run -p no:cacheprovider %s' \
        "$name" "$RPS_CI_RUN" "${name//-/_}" "$RPS_CI_RUN" "$name" "$1" "${2:-}"
}

jobs=(
    "$(pass sqlite-memory-slow "RPS_DB=sqlite RPS_LAYER=memory" --run-slow)"
    "$(pass postgres-redis "RPS_DB=postgres RPS_LAYER=redis")"
    "$(pass sqlite-redis "RPS_DB=sqlite RPS_LAYER=redis")"
    "$(pass postgres-memory "RPS_DB=postgres RPS_LAYER=memory")"
)
if [ "${RPS_CI_MATRIX:-1}" != 0 ]; then
    for row in dj42 dj6 py310 py313; do
        jobs+=("matrix-$row=RPS_MATRIX=$row bash .ci/matrix.sh")
    done
fi
exec python3 .ci/pool.py "${jobs[@]}"
