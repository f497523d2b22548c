# One-command entry points. `make test` is the README's test command and what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test test-fast lint bench-parse clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## the whole suite: unit, integration (real Postgres + simulator) and DAG runs (real scheduler)
test: install
	$(VENV)/bin/pytest

## everything but the slow real-scheduler tests
test-fast: install
	$(VENV)/bin/pytest -m "not scheduler"

lint: install
	$(VENV)/bin/ruff check plugins dags tests bench

bench-parse: install
	$(PY) bench/parse_time.py

clean:
	rm -rf $(VENV) .pytest_cache
