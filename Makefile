# Two commands a user needs: `make run` (the embedded demo) and `make test` (the whole suite,
# and beside it the other supported Django/Python combinations: scripts/matrix.sh).
# Each installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test matrix lint bench bench-peers clean

# The demo's port: make run PORT=8001
PORT ?= 8000

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,tasks]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) manage.py rundemo 127.0.0.1:$(PORT)

test: $(STAMP)
	sh scripts/ensure-package.sh /usr/bin/chromium chromium
	sh scripts/ensure-package.sh /usr/bin/faketime faketime
	sh scripts/ensure-package.sh /usr/sbin/pgbouncer pgbouncer
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	bash scripts/matrix.sh --beside $(PY) -m pytest

# The other supported Django/Python combinations alone (scripts/matrix.sh; `make test` runs
# them beside the whole suite): make matrix LEGS="6.1/3.13 5.2/3.12"
matrix:
	bash scripts/matrix.sh $(LEGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The quick comparison with plain django-q2 (bench/bench_core.py without --quick: full).
bench: $(STAMP)
	$(PY) bench/bench_core.py --quick

# The peers live in their own virtualenv (git-ignored), never in the project's.
PEERS_VENV := bench/peers/.venv
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): bench/peers/requirements.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/peers/requirements.txt
	touch $(PEERS_STAMP)

bench-peers: $(STAMP) $(PEERS_STAMP)
	sh scripts/ensure-package.sh /usr/sbin/pgbouncer pgbouncer
	$(PEERS_VENV)/bin/python bench/peers/run.py $(ARGS)

clean:
	rm -rf $(VENV) .venvs db.sqlite3 test_db.sqlite3 test-artifacts
