#!/usr/bin/env bash
# Usage: scripts/matrix.sh [DJANGO/PYTHON ...]         the legs (default: all of LEGS)
#        scripts/matrix.sh --beside COMMAND [ARG ...]  all legs while COMMAND runs here
#
# The supported combinations other than the project's own (.venv: Django 5.2 on the
# default Python, where `make test` runs the whole suite). Each leg has a virtualenv made
# with that pyenv Python (.venvs/django<D>-py<P>, git-ignored, remade when pyproject.toml
# changes) and runs LEG_TESTS (the ported conformance suites, the engine's unit tests,
# a real cluster through Django's task API) on a test database of its own, so legs run
# side by side, MATRIX_PARALLEL at once (default 2). On Django 6.x the backend plugs into
# django.tasks and the backport is not installed; on 5.2 it is (the `tasks` extra).
#
# --beside is how `make test` runs it: the legs mostly wait on real clusters, so they
# share the machine with the whole suite (COMMAND) instead of adding their time to it.
# Each leg's output: test-artifacts/matrix/<leg>.log; a line per leg at the end.
#
# Environment: DATABASE_URL as for the suite (none: SQLite); TEST_DATABASE_NAME, when
# set, prefixes the legs' test databases (default: test_<the URL's database name>, or
# files under test-artifacts/matrix/ on SQLite);
# PYENV_ROOT (default ~/.pyenv); MATRIX_PARALLEL.
set -euo pipefail
cd "$(dirname "$0")/.."

LEGS=(5.2/3.12 5.2/3.13 6.0/3.12 6.0/3.13 6.1/3.12 6.1/3.13)
LEG_TESTS=(
    tests/conformance
    tests/unit/core tests/unit/worker tests/unit/scheduling/test_cron.py
    tests/unit/scheduling/test_firing.py tests/unit/scheduling/test_builtins.py
    tests/unit/scheduling/test_firing_slots.py tests/unit/test_backends.py
    tests/unit/test_checks.py tests/unit/test_conf.py tests/unit/test_ids.py
    tests/unit/test_models.py tests/unit/test_dialect.py
    tests/integration/test_django_tasks.py
)
PARALLEL="${MATRIX_PARALLEL:-2}"
PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
LOGS=test-artifacts/matrix
mkdir -p .venvs "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.rc "$LOGS"/summary "$LOGS"/stop

url="${DATABASE_URL:-}"
name="${url##*/}"
name="${name%%\?*}"
db_prefix="test_$name"
case "$url" in  # SQLite: files beside the legs' logs
    ""|sqlite*) db_prefix="$PWD/$LOGS/test" ;;
esac
db_prefix="${TEST_DATABASE_NAME:-$db_prefix}"

# The newest installed pyenv build of Python X.Y.
find_python() {
    local found
    found=$(ls -d "$PYENV_ROOT"/versions/"$1".* 2>/dev/null | grep -E "/$1\.[0-9]+$" \
        | sort -V | tail -n 1)
    if [ -z "$found" ] || [ ! -x "$found/bin/python" ]; then
        echo "matrix: no Python $1 under $PYENV_ROOT/versions (pyenv install $1)" >&2
        return 1
    fi
    echo "$found/bin/python"
}

# Make the leg's virtualenv unless its stamp says it is current (same pyproject.toml,
# same combination, same Python).
ensure_venv() {
    local django="$1" python_version="$2" venv="$3" python extras stamp want
    python=$(find_python "$python_version")
    extras="dev"
    [ "$django" = "5.2" ] && extras="dev,tasks"
    stamp="$venv/.installed"
    want="$(sha256sum pyproject.toml | cut -d' ' -f1) django==$django.* [$extras] $python"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # One install at a time: an editable install writes truthful_jobs.egg-info here.
    flock .venvs/.install.lock "$venv/bin/python" -m pip install --quiet \
        --disable-pip-version-check -e ".[$extras]" "django==$django.*"
    "$venv/bin/python" -m pip check --disable-pip-version-check
    echo "$want" > "$stamp"
}

# Prints the leg's line; returns non-zero when it failed.
run_leg() {
    local django="${1%/*}" python_version="${1#*/}" key venv log start made tested rc=0
    key="django${django}-py${python_version}"
    venv=".venvs/$key"
    log="$LOGS/$key.log"
    start=$SECONDS
    if ! ensure_venv "$django" "$python_version" "$venv" > "$log" 2>&1; then
        echo "matrix: Django $django / Python $python_version FAILED making $venv:"
        tail -n 30 "$log"
        return 1
    fi
    made=$((SECONDS - start))
    tested=$SECONDS
    # The leg runs on the Django it names, and pytest hears Ctrl-C even when this script
    # was started in the background (where SIGINT comes ignored): it then stops its
    # clusters, as the suite does in the foreground.
    TEST_DATABASE_NAME="${db_prefix}_${key//./}" "$venv/bin/python" -c "
import signal, sys
import django, pytest
if django.VERSION[:2] != tuple(map(int, '$django'.split('.'))):
    sys.exit(f'Django {django.get_version()}, not $django')
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.exit(pytest.main())" -p no:cacheprovider -q "${LEG_TESTS[@]}" >> "$log" 2>&1 || rc=$?
    local summary
    summary=$(grep -E '^=* ?[0-9]+ (passed|failed|errors?|skipped)' "$log" | tail -n 1 \
        | tr -d '=' | sed 's/^ *//;s/ *$//')
    echo "matrix: Django $django / Python $python_version: venv ${made}s, tests" \
        "$((SECONDS - tested))s: ${summary:-$(tail -n 1 "$log")} (exit $rc; $log)"
    if [ "$rc" -ne 0 ]; then
        grep -E '^(FAILED|ERROR) ' "$log" | head -n 20 || true
        return 1
    fi
}

# Every leg, PARALLEL at once; none starts once a Ctrl-C was seen (the stop file).
run_legs() {
    local leg key
    trap 'touch "$LOGS/stop"' INT TERM
    for leg in "$@"; do
        while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do
            wait -n || true
        done
        [ -e "$LOGS/stop" ] && break
        key="django${leg%/*}-py${leg#*/}"
        (rc=0; run_leg "$leg" >> "$LOGS/summary" 2>&1 || rc=$?; echo "$rc" > "$LOGS/$key.rc") &
    done
    wait
}

# 0 when every leg passed; prints the legs' lines.
report() {
    local failed=0 leg
    cat "$LOGS/summary" 2>/dev/null || true
    for leg in "${LEGS[@]}"; do
        [ "$(cat "$LOGS/django${leg%/*}-py${leg#*/}.rc" 2>/dev/null)" = 0 ] || failed=1
    done
    echo "matrix: ${#LEGS[@]} legs in $((SECONDS - started))s, $PARALLEL at once:" \
        "$([ "$failed" -eq 0 ] && echo passed || echo FAILED)"
    return "$failed"
}

started=$SECONDS
trap 'touch "$LOGS/stop"' INT TERM
if [ "${1:-}" = "--beside" ]; then
    shift
    run_legs "${LEGS[@]}" &
    legs=$!
    rc=0
    "$@" || rc=$?
    wait "$legs" || true
    report || rc=1
    exit "$rc"
fi
[ $# -gt 0 ] && LEGS=("$@")
run_legs "${LEGS[@]}"
report
