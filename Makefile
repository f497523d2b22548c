# One-command entry points. `make test` is the README's test command and what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# make run / make demo: local (LocalExecutor) or celery (CeleryExecutor, a Redis broker, two workers)
EXECUTOR ?= $(or $(WECHAT_DATACUBE_EXECUTOR),local)

.PHONY: install test test-fast lint bench-parse clean
.PHONY: run demo psql airflow docs
.PHONY: bench reliability wheel

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml devtools/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e . -e devtools
	touch $(STAMP)

install: $(STAMP)

## the whole suite: unit, integration (real Postgres + simulator) and DAG runs (real scheduler)
test: install
	$(VENV)/bin/pytest

## the provider wheel in dist/: wechat_datacube only, never devtools/ (tests/packaging checks
## it). build/ goes first: setuptools would otherwise ship modules deleted since the last build.
wheel: install
	rm -rf build
	$(PY) -m build --wheel

## everything but the slow real-scheduler tests
test-fast: install
	$(VENV)/bin/pytest -m "not scheduler"

lint: install
	$(VENV)/bin/ruff check plugins devtools dags tests bench reliability

## the pipeline locally: PostgreSQL ($$WECHAT_DATACUBE_PG_URL, else embedded under .local/),
## the WeChat simulator and Airflow on :8080 catching up 14 days; Ctrl-C stops it all.
## make run EXECUTOR=celery: CeleryExecutor, two workers, Redis ($$WECHAT_DATACUBE_REDIS_URL,
## else 127.0.0.1:6379, else an embedded one)
run: install
	$(PY) -m wechat_datacube_dev.localrun run --executor $(EXECUTOR)

## the same, headless: finish the catchup, print rows per table, stop (exit 0 = all good)
demo: install
	$(PY) -m wechat_datacube_dev.localrun demo --executor $(EXECUTOR)

## psql on the data database of a running `make run` (another terminal)
psql: install
	$(PY) -m wechat_datacube_dev.localrun psql

## the airflow CLI on a running `make run` (same AIRFLOW_HOME, metadata DB, config, connections):
## make airflow ARGS="dags list"; fails when no stack runs
airflow: install
	@$(PY) -m wechat_datacube_dev.localrun airflow $(ARGS)

## regenerate docs/tables.md and the README's generated sections from the code
docs: install
	$(PY) -m wechat_datacube_dev.docgen

## B3 alone: parse time of dags/ at 1, 10 and 50 accounts vs an EmptyOperator baseline (~5 min);
## rewrites the B3 section of docs/benchmarks.md
bench-parse: install
	$(PY) bench/parse_time.py --write docs/benchmarks.md

## B1-B7 against real Airflow clusters (LocalExecutor; B6 also CeleryExecutor on Redis), Postgres and the simulator;
## writes docs/benchmarks.md (~45 min; B7 needs ~8 GB of free disk)
bench: install
	$(PY) -m bench

## R1-R11 faults, kill -9, bad payloads, permanent errors, secrets, token concurrency, PostgreSQL restart, HTTP 502,
## hardening, a Celery worker killed mid-run; writes docs/reliability.md (~15 min)
reliability: install
	$(PY) -m reliability

clean:
	rm -rf $(VENV) .pytest_cache
