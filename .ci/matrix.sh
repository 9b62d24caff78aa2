#!/usr/bin/env bash
# The support matrix: the fast test suite (no --run-slow) for each Django
# series and Python that the classifiers in setup.cfg promise, on SQLite and
# PostgreSQL. The main runs of .ci/run already test .venv (Python 3.11 with
# the newest Django it allows, 5.2) on both databases and both layers, so 5.2
# has no row here. Each combination has its own venv
# (.venv-<name>), reused while setup.cfg and the Django pin are unchanged.
#
# .ci/tests.sh runs one row per job, beside the main passes.
#
#   .ci/matrix.sh                        every combination
#   RPS_MATRIX="dj42 dj6" .ci/matrix.sh  only those venvs
set -euo pipefail
cd "$(dirname "$0")/.."

# name   python  django-requirement  databases
MATRIX=(
    "dj42    3.11  Django>=4.2,<5.0  sqlite postgres"
    "dj6     3.12  Django>=6.0,<7.0  sqlite postgres"
    "py310   3.10  Django>=4.2,<5.0  sqlite"
    "py313   3.13  Django>=6.0,<6.1  sqlite"
)

find_python() {
    local version="$1" candidate
    for candidate in "python$version" /root/.pyenv/versions/"$version".*/bin/python; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$version'.split('.')))" 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

summary=()
failed=0
for row in "${MATRIX[@]}"; do
    read -r name version django databases <<<"$row"
    if [ -n "${RPS_MATRIX:-}" ] && [[ " $RPS_MATRIX " != *" $name "* ]]; then
        continue
    fi
    if ! python="$(find_python "$version")"; then
        echo "!! $name: no Python $version on this machine" >&2
        exit 1
    fi
    venv=".venv-$name"
    stamp="$venv/.rps-matrix-installed"
    want="$(sha1sum setup.cfg | cut -d' ' -f1) $django"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "--- $name: installing rohrpost-signals[test] with $django on Python $version"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]" "$django"
        echo "$want" > "$stamp"
    fi
    versions="$("$venv/bin/python" -c 'import sys, django; print(f"Python {sys.version.split()[0]}, Django {django.get_version()}")')"
    for db in $databases; do
        layer=memory
        [ "$db" = postgres ] && layer=redis
        echo "--- $name: $versions, $db, $layer layer"
        # Every combination runs even after a failure: CI shows the whole picture.
        if RPS_DB="$db" RPS_LAYER="$layer" \
            RPS_PG_TEST_DB="test_rps_matrix_${RPS_CI_RUN:-0}_$name" \
            RPS_REDIS_PREFIX="rps-matrix-${RPS_CI_RUN:-0}-$name" \
            "$venv/bin/python" -m pytest -q -p no:cacheprovider; then
            summary+=("passed  $name: $versions, $db + $layer layer")
        else
            summary+=("FAILED  $name: $versions, $db + $layer layer")
            failed=1
        fi
    done
done

echo "--- matrix"
printf '%s\n' "${summary[@]}"
exit "$failed"
