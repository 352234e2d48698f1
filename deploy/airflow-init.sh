#!/usr/bin/env bash
# One-shot initialisation (compose service airflow-init; also run by the production integration
# test): migrate Airflow's metadata DB, create the first Admin from _AIRFLOW_WWW_USER_USERNAME /
# _AIRFLOW_WWW_USER_PASSWORD, and sync the roles defined in deploy/roles.py.
# Idempotent: safe on every `docker compose up`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"

echo "airflow-init: migrating the metadata database"
airflow db migrate

echo "airflow-init: syncing roles (deploy/roles.py) and the first Admin"
"$python" "$here/roles.py" sync --ensure-admin

echo "airflow-init: the warehouse pool (MHSDS_WAREHOUSE_POOL_SLOTS slots; see README, Operating the pipeline)"
"$python" -c 'import os, sys
from mhsds_pipeline.cli import ensure_pool
done = ensure_pool(dict(os.environ))
print(done.stdout.strip() or done.stderr.strip())
sys.exit(done.returncode)'
