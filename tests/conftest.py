"""Shared fixtures: settings pointing every path into a temporary directory."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from mhsds_pipeline.config import load_settings

# tests/faults/_fault_helpers.py holds plain assert helpers: rewrite them for readable failures.
pytest.register_assert_rewrite("_fault_helpers")

REPO = Path(__file__).resolve().parents[1]

# The submission audit log is keyed (HMAC). Without a key the embedded default generates one
# under the data directory; a test that packages with the repository's own settings would then
# write data/secrets/ into the checkout. Tests of the key handling itself unset this.
os.environ.setdefault("MHSDS_AUDIT_KEY", "test-suite-audit-key-not-a-secret-" + "0" * 30)


def postgres_available(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def scratch_settings(base: Path, *, source: Path | None = None, warehouse: Path | None = None):
    """Settings for a run whose SQLite source, data, warehouse and outputs all live under ``base``
    (the repository's dbt project). By default the source is ``base/epr.sqlite`` and the
    warehouse ``base/data/warehouse.duckdb``."""
    return replace(
        load_settings(),
        home=REPO,
        source_url=f"sqlite:///{source or base / 'epr.sqlite'}",
        data_dir=base / "data",
        output_dir=base / "output",
        warehouse_target="duckdb",
        warehouse_path=warehouse or base / "data" / "warehouse.duckdb",
        dbt_project_dir=REPO / "dbt_project",
    )


@pytest.fixture
def tmp_settings(tmp_path: Path):
    """Settings whose data, warehouse and output live under tmp_path (the repo's dbt project)."""
    return scratch_settings(tmp_path)
