#!/usr/bin/env bash
# The production settings of docker-compose.yml mapped onto services on this machine (local
# PostgreSQL and Redis instead of the compose containers), as export lines. The secrets come from
# the environment, e.g. a filled-in .env:
#
#   set -a; source .env; set +a
#   eval "$(scripts/prod_env.sh --airflow-db airflow --clinical-db epr --warehouse-db mhsds_warehouse)"
#   .venv/bin/airflow dags test mhsds_monthly 2026-11-05 -c '{"period": "2026-10"}'
#
# tests/integration/test_production.py does the same with throwaway databases.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec .venv/bin/python deploy/compose_env.py "$@"
