"""Airflow Assets shared by the DAGs (imported at DAG-file top level: keep this module light).

``MHSDS_PUBLISHED`` is emitted by the ``publish`` task of ``mhsds_monthly`` (``outlets``) with the
event extra ``{"period": "YYYY-MM"}``; ``mhsds_mhis`` is scheduled on it and reads the period
from the triggering event.
"""

from __future__ import annotations

from airflow.sdk import Asset

MHSDS_PUBLISHED = Asset(name="mhsds_published", uri="file:///mhsds/published")
