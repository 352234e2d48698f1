"""The system view's DAG (``mhsds_system``): parses, maps one task per provider, imports nothing heavy.

The last test runs the DAG with Airflow's own runner (``airflow dags test``, SQLite metadata in a
temporary AIRFLOW_HOME) on one small provider package and checks the period was published with
the bytes the in-process flow gives; it is marked ``integration`` (about a minute).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DAG_FILE = DAGS / "mhsds_system.py"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["mhsds_system"]


def test_the_dag_parses_with_its_schedule_and_docs(dag):
    assert dag.max_active_runs == 1 and dag.doc_md and "system" in dag.tags
    assert set(dag.task_ids) == {"resolve_period", "list_packages", "load_and_validate_provider", "combine"}


def test_one_mapped_task_per_provider_then_combine(dag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    mapped = dag.get_task("load_and_validate_provider")
    assert isinstance(mapped, MappedOperator)
    expanded = mapped.op_kwargs_expand_input.value  # one task instance per listed package
    assert list(expanded) == ["package_dir"] and expanded["package_dir"].operator.task_id == "list_packages"
    assert mapped.map_index_template == "{{ provider }}"  # the UI labels each by its ODS folder
    assert "list_packages" in mapped.upstream_task_ids
    assert "combine" in mapped.downstream_task_ids
    assert dag.get_task("resolve_period").downstream_task_ids >= {"list_packages", "combine"}
    # each provider has its own DuckDB file: the trust's one-slot warehouse pool is not needed
    assert mapped.pool != "mhsds_warehouse" and mapped.max_active_tis_per_dagrun == 4


def test_dag_file_does_not_import_heavy_libraries():
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy=[m for m in ('great_expectations','pandas','dbt','duckdb','pyarrow') "
        "if m in sys.modules];"
        "print(','.join(heavy))"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAG_FILE)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout
    assert time.perf_counter() - t0 < 30


@pytest.mark.integration
def test_the_dag_runs_a_month_with_airflow_and_publishes_what_the_flow_does(tmp_path):
    from system_packages import PERIOD, REGISTRY, digests, provider_tables, write_package

    from mhsds_pipeline.system.flow import run_system_month

    inbox = tmp_path / "inbox"
    write_package(provider_tables("R1A", 6, defects=1), inbox / PERIOD / "R1A")
    (inbox / "providers.csv").write_text(REGISTRY)
    run_system_month(inbox, PERIOD, tmp_path / "flow_out", tmp_path / "flow_work")
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "MHSDS_HOME": str(REPO),
        "MHSDS_DATA_DIR": str(tmp_path / "data"),
        "MHSDS_OUTPUT_DIR": str(tmp_path / "output"),
        "MHSDS_SYSTEM_INBOX": str(inbox),
        "MHSDS_SYSTEM_OUTPUT": str(tmp_path / "dag_out"),
        "MHSDS_SYSTEM_WORK": str(tmp_path / "dag_work"),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    env.pop("AIRFLOW_CTX_DAG_RUN_ID", None)
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    proc = subprocess.run(
        [airflow, "dags", "test", "mhsds_system", "-c", json.dumps({"period": PERIOD})],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    published = tmp_path / "dag_out" / PERIOD
    assert published.is_symlink()
    assert digests(published.resolve()) == digests((tmp_path / "flow_out" / PERIOD).resolve())
