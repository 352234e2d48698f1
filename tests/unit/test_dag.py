"""The DAG parses quickly, has no heavy imports at top level and wires the steps in order."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "mhsds_monthly" in dagbag.dags


def test_task_order_is_write_audit_publish(dagbag):
    dag = dagbag.dags["mhsds_monthly"]
    order = [
        "resolve_period",
        "extract",
        "load_raw",
        "validate_raw",
        "dbt_build",
        "quality_gate",
        "publish",
        "package_submission",
    ]
    assert set(order) <= set(dag.task_ids)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    assert dag.max_active_runs == 1 and dag.doc_md
    assert [o.name for o in dag.get_task("publish").outlets] == ["mhsds_published"]


def test_dag_file_does_not_import_heavy_libraries():
    """DAG processor speed: GX, pandas, dbt, duckdb must only be imported inside tasks."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy=[m for m in ('great_expectations','pandas','dbt','duckdb','pyarrow') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "mhsds_monthly.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout
    assert time.perf_counter() - t0 < 30
