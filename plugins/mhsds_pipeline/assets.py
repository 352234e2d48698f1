"""Airflow Assets shared by the DAGs (imported at DAG-file top level: keep this module light).

``MHSDS_PUBLISHED`` is emitted by the ``publish`` task of ``mhsds_monthly`` (``outlets``) with the
event extra ``{"period": "YYYY-MM"}``; ``mhsds_mhis`` is scheduled on it and reads the period
from the triggering event.
"""

from __future__ import annotations

from airflow.sdk import Asset

MHSDS_PUBLISHED = Asset(name="mhsds_published", uri="file:///mhsds/published")

#: The Airflow pool every task that opens the warehouse runs in, across both DAGs. DuckDB has
#: one writer per file, so the embedded set-up gives it one slot (``mhsds run`` and the test
#: suite create it; docker-compose's airflow-init too). A PostgreSQL warehouse takes concurrent
#: sessions: production may give the pool more slots (``MHSDS_WAREHOUSE_POOL_SLOTS``), while
#: ``max_active_runs=1`` still keeps one monthly run at a time on the shared ``raw_epr`` schema.
WAREHOUSE_POOL = "mhsds_warehouse"
WAREHOUSE_POOL_DESCRIPTION = "MHSDS warehouse: tasks that open the warehouse (DuckDB allows one writer)"
