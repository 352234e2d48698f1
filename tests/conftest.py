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


@pytest.fixture
def tmp_settings(tmp_path: Path):
    """Settings whose data, warehouse and output live under tmp_path (the repo's dbt project)."""
    base = load_settings()
    return replace(
        base,
        home=REPO,
        source_url=f"sqlite:///{tmp_path / 'epr.sqlite'}",
        data_dir=tmp_path / "data",
        output_dir=tmp_path / "output",
        warehouse_target="duckdb",
        warehouse_path=tmp_path / "data" / "warehouse.duckdb",
        dbt_project_dir=REPO / "dbt_project",
    )
