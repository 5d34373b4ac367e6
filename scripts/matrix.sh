#!/usr/bin/env bash
# Usage: scripts/matrix.sh [DJANGO/PYTHON ...]   (default: every leg below)
#
# The supported combinations other than the project's own (.venv, Django 5.2 on the
# default Python, where `make test` runs the whole suite): each in its own virtualenv,
# made with that pyenv Python (.venvs/django<D>-py<P>, git-ignored, remade when
# pyproject.toml changes), runs the ported conformance suites, the engine's unit tests
# and a real cluster through Django's task API (LEG_TESTS), on a test database of its own
# so the legs run side by side (MATRIX_PARALLEL at once, default 3). On Django 6.x the
# backend plugs into django.tasks and the backport is not installed; on 5.2 it is
# (the `tasks` extra). Each leg's output: test-artifacts/matrix/<leg>.log.
#
# Environment: DATABASE_URL as for the suite (empty: SQLite); TEST_DATABASE_NAME, when
# set, prefixes the legs' test databases (default: test_<the URL's database name>);
# PYENV_ROOT (default ~/.pyenv); MATRIX_PARALLEL.
set -euo pipefail
cd "$(dirname "$0")/.."

LEGS=(5.2/3.12 5.2/3.13 6.0/3.12 6.0/3.13 6.1/3.12 6.1/3.13)
LEG_TESTS=(
    tests/conformance
    tests/unit/core tests/unit/worker tests/unit/scheduling/test_schedules.py
    tests/unit/scheduling/test_firing_slots.py tests/unit/test_backends.py
    tests/unit/test_checks.py tests/unit/test_conf.py tests/unit/test_ids.py
    tests/unit/test_models.py
    tests/integration/test_django_tasks.py
)
[ $# -gt 0 ] && LEGS=("$@")
PARALLEL="${MATRIX_PARALLEL:-3}"
PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
LOGS=test-artifacts/matrix
mkdir -p .venvs "$LOGS"

url="${DATABASE_URL:-}"
name="${url##*/}"
name="${name%%\?*}"
db_prefix="${TEST_DATABASE_NAME:-test_${name:-matrix}}"

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

run_leg() {
    local leg="$1" django="${1%/*}" python_version="${1#*/}" key venv log start made
    key="django${django}-py${python_version}"
    venv=".venvs/$key"
    log="$LOGS/$key.log"
    start=$SECONDS
    if ! ensure_venv "$django" "$python_version" "$venv" > "$log" 2>&1; then
        echo "matrix: $leg FAILED making $venv:"
        tail -n 30 "$log"
        return 1
    fi
    made=$((SECONDS - start))
    local tested=$SECONDS rc=0
    # The leg runs on the Django it says: no stale .venv or settings in the way.
    "$venv/bin/python" -c "import django, sys; v = '.'.join(map(str, django.VERSION[:2])); \
sys.exit(v != '$django' and f'Django {v}, not $django')" >> "$log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        TEST_DATABASE_NAME="${db_prefix}_${key//./}" "$venv/bin/python" -m pytest \
            -p no:cacheprovider -q "${LEG_TESTS[@]}" >> "$log" 2>&1 || rc=$?
    fi
    local summary
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' "$log" \
        | tail -n 1 | tr -d '=' | sed 's/^ *//;s/ *$//')
    echo "matrix: Django $django / Python $python_version: venv ${made}s, tests" \
        "$((SECONDS - tested))s: ${summary:-no summary} (exit $rc; $log)"
    if [ "$rc" -ne 0 ]; then
        grep -E '^(FAILED|ERROR) ' "$log" | head -n 20 || true
        return 1
    fi
}

started=$SECONDS
rm -f "$LOGS"/*.rc
for leg in "${LEGS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do
        wait -n || true
    done
    key="django${leg%/*}-py${leg#*/}"
    (rc=0; run_leg "$leg" || rc=$?; echo "$rc" > "$LOGS/$key.rc") &
done
wait
failed=0
for leg in "${LEGS[@]}"; do
    [ "$(cat "$LOGS/django${leg%/*}-py${leg#*/}.rc" 2>/dev/null)" = 0 ] || failed=1
done
echo "matrix: ${#LEGS[@]} legs in $((SECONDS - started))s, $PARALLEL at once:" \
    "$([ "$failed" -eq 0 ] && echo passed || echo FAILED)"
exit "$failed"
