# Two commands on a fresh machine:
#   make run    set up, build the synthetic EPR if absent, run the mhsds_monthly DAG for PERIOD
#   make test   set up and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PERIOD ?=
SCALE ?= 1
SEED ?= 42
MONTHS ?= 12

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
# The Airflow plugins folder holds the file views (Data Docs, IG page, dbt docs, MHIS) as in the
# production image; the pipeline package itself is installed into the venv.
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/deploy/airflow_plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(CURDIR)/.airflow/airflow.db
export AIRFLOW__CORE__EXECUTOR ?= LocalExecutor
export MHSDS_HOME := $(CURDIR)

UI_PORT ?= 8080

.PHONY: setup run backfill test lint benchmark benchmark-trust benchmark-system clean airflow-ui

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/mhsds run --period "$(PERIOD)" --scale $(SCALE) --seed $(SEED) --months $(MONTHS)

# Publish the MONTHS months up to PERIOD (steps in-process), then MHIS for PERIOD: gives finance the
# rolling 12 months the LTP metrics need. About 1-2 minutes per month at scale 1.
backfill: $(STAMP)
	@end=$$($(BIN)/python -c "from mhsds_pipeline.period import ReportingPeriod as R; print(R.resolve('$(PERIOD)'))"); \
	for k in $$(seq $$(($(MONTHS) - 1)) -1 0); do \
	  p=$$($(BIN)/python -c "from mhsds_pipeline.period import ReportingPeriod as R; print(R.parse('$$end').shift(-$$k))"); \
	  echo "== $$p"; $(BIN)/mhsds run --no-airflow --period $$p --scale $(SCALE) --seed $(SEED) --months $(MONTHS) || exit 1; \
	done

# The Airflow UI on the local metadata database: the runs `make run` made, their task logs, and
# links to Data Docs, the IG page, dbt docs and the MHIS outputs. Local only: listens on
# 127.0.0.1 and everyone is admin (production: docker-compose.yml, FAB roles).
airflow-ui: $(STAMP)
	MHSDS_OUTPUT_DIR=$${MHSDS_OUTPUT_DIR:-$(CURDIR)/output} AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True \
	  $(BIN)/airflow api-server --host 127.0.0.1 --port $(UI_PORT)

test: $(STAMP)
	@scripts/ensure_chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check plugins dags tests scripts deploy
	$(BIN)/ruff format --check plugins dags tests scripts deploy

# One trust at scale 1 and 10 (about 5 minutes), then the system view on a national month:
# PROVIDERS providers adding up to TOTAL_SCALE (60 and 67: about 11.2M rows; generating them takes
# about an hour here and is kept for the next run), on DuckDB, with Spark beside it.
PROVIDERS ?= 60
TOTAL_SCALE ?= 67
benchmark: benchmark-trust benchmark-system

benchmark-trust: $(STAMP)
	$(BIN)/python scripts/benchmark.py

benchmark-system: $(STAMP)
	$(BIN)/python scripts/benchmark_system.py --providers $(PROVIDERS) --total-scale $(TOTAL_SCALE)

clean:
	rm -rf data output .airflow dbt_project/target dbt_project/logs
