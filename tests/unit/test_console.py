"""What a data engineer sees: one line per task from Airflow's metadata database, the XCom
summaries behind them, and the per-task log files the Airflow UI reads."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from mhsds_pipeline import summaries
from mhsds_pipeline.airflow_run import (
    TaskRow,
    format_task,
    run_dag_test,
    split_task_lines,
    structured,
    task_note,
    write_task_logs,
)

pytestmark = pytest.mark.unit

RUN = "manual__2026-12-05T14:29:06+00:00"
DAG_TEST_OUTPUT = f"""\
2026-12-05T14:29:06.100000Z [info     ] Filling up the DagBag [airflow.models.dagbag]
2026-12-05T14:29:07.000000Z [info     ] [DAG TEST] starting task_id=extract map_index=-1 [airflow.sdk.definitions.dag]
2026-12-05T14:29:07.500000Z [info     ] extracted 12 tables [mhsds_pipeline.extract]
2026-12-05T14:29:08.000000Z [info     ] [DAG TEST] end task task_id=extract map_index=-1 [airflow.sdk.definitions.dag]
2026-12-05T14:29:08.100000Z [info     ] [DAG TEST] starting task_id=publish_mhis map_index=0 [airflow.sdk.definitions.dag]
2026-12-05T14:29:08.200000Z [error    ] Task failed [task]
Traceback (most recent call last):
  File "x.py", line 1, in <module>
ValueError: boom
2026-12-05T14:29:08.300000Z [info     ] [DAG TEST] end task task_id=publish_mhis map_index=0 [airflow.sdk.definitions.dag]
2026-12-05T14:29:09.000000Z [info     ] Dagrun finished {RUN} [airflow]
"""


def test_each_task_gets_its_own_lines_including_tracebacks():
    sections = split_task_lines(DAG_TEST_OUTPUT.splitlines(keepends=True))
    assert set(sections) == {("extract", -1), ("publish_mhis", 0)}
    assert len(sections[("extract", -1)]) == 3 and "extracted 12 tables" in sections[("extract", -1)][1]
    assert any("ValueError: boom" in line for line in sections[("publish_mhis", 0)])
    assert not any("Dagrun finished" in line for lines in sections.values() for line in lines)


def test_log_lines_become_structured_messages_airflow_parses():
    from airflow.utils.log.file_task_handler import StructuredLogMessage

    line = "2026-12-05T14:29:08.200000Z [error    ] Task failed [task]"
    msg = StructuredLogMessage.model_validate_json(structured(line))
    assert msg.event == "Task failed [task]" and msg.level == "error" and msg.timestamp is not None
    plain = StructuredLogMessage.model_validate_json(structured("\x1b[32m  File x.py\x1b[0m"))
    assert plain.event == "  File x.py" and plain.timestamp is None


def test_task_logs_land_where_the_ui_reads_them(tmp_path):
    log_file = tmp_path / "run.log"
    log_file.write_text(DAG_TEST_OUTPUT)
    rows = [
        TaskRow("extract", -1, "success", 1, None, None),
        TaskRow("publish_mhis", 0, "failed", 2, None, None),
        TaskRow("never_ran", -1, "upstream_failed", 0, None, None),
    ]
    assert write_task_logs(log_file, tmp_path / "logs", "mhsds_mhis", RUN, rows) == 2
    extract = tmp_path / "logs" / "dag_id=mhsds_mhis" / f"run_id={RUN}" / "task_id=extract" / "attempt=1.log"
    mapped = extract.parents[1] / "task_id=publish_mhis" / "map_index=0" / "attempt=2.log"
    assert [json.loads(x)["event"] for x in extract.read_text().splitlines()][1] == (
        "extracted 12 tables [mhsds_pipeline.extract]"
    )
    assert "ValueError: boom" in mapped.read_text()
    assert not (extract.parents[1] / "task_id=never_ran").exists()


def test_one_line_per_task_reads_the_summary_not_the_identifiers():
    row = TaskRow(
        "quality_gate", -1, "success", 1, datetime(2026, 12, 5, 14, 0, 0), datetime(2026, 12, 5, 14, 0, 38)
    )
    gate = summaries.gate(
        {
            "period": "2026-10",
            "status": "passed",
            "checks": 1537,
            "warnings": 48,
            "rejected_rows": {"MHS001MPI": 6, "MHS101Referral": 18, "MHS000Header": 0},
            "seconds": {"rules_sql": 3.1, "total": 38.2},
        }
    )
    assert gate == {
        "period": "2026-10",
        "status": "passed",
        "checks": 1537,
        "warnings": 48,
        "rows_quarantined": 24,
        "tables_with_rejections": 2,
        "seconds": 38.2,
    }
    line = format_task(row, task_note("quality_gate", gate))
    assert line.split()[:4] == ["quality_gate", "success", "38.0", "s"]
    assert line.endswith("passed: 1,537 checks, 24 rows quarantined")
    assert task_note("unknown_task", gate) == "" and task_note("extract", None) == ""


def test_summaries_are_small_flat_json():
    """One XCom per task: scalars only, so nothing per table or per row rides in XCom."""
    built = [
        summaries.extract(
            {"period": "2026-10", "row_counts": {"a": 2, "b": 3}, "source_watermark": "w", "seconds": 1}
        ),
        summaries.load({"period": "2026-10", "row_counts": {"a": 5}, "seconds": 0.5}),
        summaries.build(
            {"period": "2026-10", "counts": {"success": 103, "pass": 74, "warn": 1}, "seconds": 9}
        ),
        summaries.publish({"period": "2026-10", "version": "v1", "row_counts": {"a": 1}, "seconds": 2}),
        summaries.mhis(
            {
                "period": "2026-10",
                "financial_year": "2026/27",
                "version": "v2",
                "meets_standard_forecast": True,
                "metrics": {"MHS95": {"status": "met"}, "MHS91": {"status": "incomplete"}},
                "mhsds_months_missing": ["2026-01"],
                "seconds": 1,
            }
        ),
    ]
    for value in built:
        assert all(not isinstance(v, dict | list) for v in value.values()), value
        assert len(json.dumps(value)) < 300
    assert built[0]["rows"] == 5 and built[2]["built"] == 103 and built[2]["warnings"] == 1
    assert built[4]["metrics_met"] == 1 and built[4]["metrics_incomplete"] == 1


def test_dags_keep_one_xcom_per_task():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    for dag_id in ("mhsds_monthly", "mhsds_mhis"):
        for task in bag.dags[dag_id].tasks:
            assert task.multiple_outputs is False, (dag_id, task.task_id)


def test_run_dag_test_prints_tasks_as_they_finish(tmp_path):
    """A stand-in for `airflow dags test` writes the metadata rows Airflow would; the console
    gets one line per finished task and the command's output goes to the run log only."""
    db = tmp_path / "airflow.db"
    url = f"sqlite:///{db}"
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(
            sa.text("CREATE TABLE dag_run (id INTEGER PRIMARY KEY, dag_id TEXT, run_id TEXT, state TEXT)")
        )
        c.execute(
            sa.text(
                "CREATE TABLE task_instance (dag_id TEXT, run_id TEXT, task_id TEXT, map_index INT, state TEXT, "
                "try_number INT, start_date TIMESTAMP, end_date TIMESTAMP)"
            )
        )
        c.execute(
            sa.text("CREATE TABLE xcom (dag_run_id INT, task_id TEXT, map_index INT, key TEXT, value JSON)")
        )
        c.execute(sa.text("INSERT INTO dag_run VALUES (1, 'mhsds_monthly', 'older', 'success')"))
    engine.dispose()
    fake = f"""
import sqlite3, time
c = sqlite3.connect({str(db)!r})
print("x" * 50 + " thousands of Airflow lines")
c.execute("INSERT INTO dag_run VALUES (2, 'mhsds_monthly', '{RUN}', 'running')")
c.execute("INSERT INTO task_instance VALUES ('mhsds_monthly', '{RUN}', 'extract', -1, 'success', 1, "
          "'2026-12-05 14:00:00', '2026-12-05 14:00:01.5')")
c.execute("INSERT INTO xcom VALUES (2, 'extract', -1, 'return_value', '{{\\"rows\\": 12345, \\"tables\\": 61}}')")
c.execute("INSERT INTO task_instance VALUES ('mhsds_monthly', '{RUN}', 'load_raw', -1, 'failed', 1, "
          "'2026-12-05 14:00:02', '2026-12-05 14:00:03')")
c.execute("UPDATE dag_run SET state = 'failed' WHERE id = 2")
c.commit()
raise SystemExit(1)
"""
    out = io.StringIO()
    log_file = tmp_path / "logs" / "run.log"
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    rc, run_id, state = run_dag_test(
        [sys.executable, "-c", fake], env, "mhsds_monthly", log_file, out=out, poll_seconds=0.05
    )
    assert (rc, run_id, state) == (1, RUN, "failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:4] == ["extract", "success", "1.5", "s"] and lines[0].endswith(
        "12,345 rows from 61 tables"
    )
    assert lines[1].split()[:2] == ["load_raw", "failed"]
    assert "thousands of Airflow lines" in log_file.read_text()
