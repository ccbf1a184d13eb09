# One command to run, one to test (see README.md). Everything goes through .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstall only when a requirements file is newer than the last successful install.
STAMP := $(VENV)/.requirements-installed

DEMO_PASSWORD ?= demo-pass-2026
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Data folder (SQLite, broker, static, beat schedule); o2o/settings.py reads the same O2O_VAR_DIR.
VAR_DIR := $(or $(O2O_VAR_DIR),var)
# collectstatic reruns only when the installed packages or static/ changed since the last run.
STATIC_STAMP := $(VAR_DIR)/static/.collected

.PHONY: run test bench lint venv migrate seed

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

migrate: $(STAMP)
	mkdir -p $(VAR_DIR)
	$(PY) manage.py migrate --noinput

$(STATIC_STAMP): $(STAMP) $(shell find static -type f 2>/dev/null)
	$(PY) manage.py collectstatic --noinput -v 0
	touch $@

seed: migrate
	$(PY) manage.py seed_demo --password "$(DEMO_PASSWORD)"

run: migrate $(STATIC_STAMP) seed
	exec $(PY) manage.py runportal --host "$(HOST)" --port "$(PORT)" --demo-password "$(DEMO_PASSWORD)"

test: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Benchmarks (not tests): print a table and write bench-results/*.json. SQLite always; PostgreSQL too
# when DATABASE_URL points at it.
BENCH_ARGS ?=
RECONCILE_BENCH_ARGS ?=
REDEEM_BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m tests.bench.bench_landing $(BENCH_ARGS)
	$(PY) -m tests.bench.bench_reconcile $(RECONCILE_BENCH_ARGS)
	$(PY) -m tests.bench.bench_redeem $(REDEEM_BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
