"""End to end: the mhsds_monthly DAG, run by Airflow on a small synthetic EPR.

Checks every published table's row count and keys against the generator's own expectations
(an implementation independent of the extract SQL and dbt), idempotency, and that a failed run
leaves the previous outputs of the period untouched.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mhsds_pipeline.source.schema_v6 import generated_contracts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PERIOD = "2026-10"
MHSDS_CLI = str(Path(sys.executable).with_name("mhsds"))

#: How to read the EPR key the generator expects out of each published table.
KEY_OF = {
    "MHS001MPI": ("mhs001_mpi", ["LocalPatientID"]),
    "MHS002GP": ("mhs002_gp", ["LocalPatientID", "GMPReg", "StartDateGMPRegistration"]),
    "MHS101Referral": ("mhs101_referral", ["ServiceRequestID"]),
    "MHS102OtherServiceType": ("mhs102_other_service_type", ["ServiceRequestID", "OtherCareProfTeamLocalID"]),
    "MHS201CareContact": ("mhs201_care_contact", ["CareContactID"]),
    "MHS202CareActivity": ("mhs202_care_activity", ["CareActID"]),
    "MHS501HospProvSpell": ("mhs501_hosp_prov_spell", ["HospProvSpellID"]),
    "MHS502WardStay": ("mhs502_ward_stay", ["WardStayID"]),
    "MHS902ServiceTeamDetails": ("mhs902_service_team_details", ["CareProfTeamLocalID"]),
}
#: Tables whose MHSDS key is not the EPR key: compared by row count.
COUNT_ONLY = {
    "MHS604PrimDiag": "mhs604_prim_diag",
    "MHS605SecDiag": "mhs605_sec_diag",
    "MHS606CodedScoreAssessmentRefer": "mhs606_coded_score_assessment_refer",
    "MHS607CodedScoreAssessmentAct": "mhs607_coded_score_assessment_act",
    "MHS204IndirectActivity": "mhs204_indirect_activity",
}
# The 46 tables built from the v6.0 rules file (their EPR key is record_id, never published).
COUNT_ONLY.update({m["config"]["meta"]["idb_table"]: m["name"] for m in generated_contracts()})


def _key(values) -> str:
    return "|".join("" if v is None else str(v) for v in values)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from mhsds_pipeline.synthetic.generator import generate

    base = tmp_path_factory.mktemp("e2e")
    source = base / "data" / "epr" / "epr.sqlite"
    source.parent.mkdir(parents=True)
    generate(f"sqlite:///{source}", scale=0.05, seed=7, end_period=PERIOD, months=2, out_dir=source.parent)
    env = dict(os.environ)
    env.update(
        MHSDS_HOME=str(REPO),
        MHSDS_DATA_DIR=str(base / "data"),
        MHSDS_OUTPUT_DIR=str(base / "output"),
        MHSDS_SOURCE_URL=f"sqlite:///{source}",
        MHSDS_WAREHOUSE_PATH=str(base / "data" / "warehouse.duckdb"),
        AIRFLOW_HOME=str(base / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{base / 'airflow' / 'airflow.db'}",
    )
    return base, env


def _run(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MHSDS_CLI, "run", "--period", PERIOD, *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def first_proc(workspace):
    base, env = workspace
    proc = _run(env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    return proc


@pytest.fixture(scope="module")
def first_run(workspace, first_proc):
    base, _ = workspace
    return base / "output" / PERIOD


def test_console_is_one_screen_with_a_line_per_task(first_proc, workspace):
    """`mhsds run` prints one line per task and a summary; Airflow's own output goes to a file."""
    base, _ = workspace
    lines = first_proc.stdout.splitlines()
    assert len(lines) <= 45, first_proc.stdout
    for task in ("extract", "load_raw", "validate_raw", "dbt_build", "quality_gate", "publish"):
        row = next((line for line in lines if line.split()[:1] == [task]), None)
        assert row is not None and row.split()[1] == "success" and row.split()[3] == "s", (task, lines)
    gate = next(line for line in lines if line.split()[:1] == ["quality_gate"])
    assert "checks" in gate and "rows quarantined" in gate, gate
    assert any(line.startswith("MHSDS 2026-10 published to") for line in lines), lines
    assert "Where to look" in lines and any("IG page" in line for line in lines), lines
    log_line = next(line for line in lines if "Airflow log" in line)
    run_log = Path(log_line.split("Airflow log", 1)[1].strip())
    run_log = run_log if run_log.is_absolute() else REPO / run_log
    assert run_log.is_file() and "[DAG TEST] starting task_id=quality_gate" in run_log.read_text()
    # No Airflow log lines on the console (they are thousands).
    assert not [line for line in lines if "[info     ]" in line or "DAG TEST" in line]


def test_task_logs_are_readable_by_the_airflow_ui(first_proc, workspace):
    """`dags test` runs tasks in-process; the CLI files each task's lines where Airflow's own
    FileTaskHandler (what the UI's log view calls) reads them."""
    base, env = workspace
    code = """
import sys
from airflow.models.taskinstance import TaskInstance
from airflow.utils.log.file_task_handler import FileTaskHandler
from airflow.utils.session import create_session
from airflow.configuration import conf
with create_session() as s:
    ti = (s.query(TaskInstance).filter_by(dag_id="mhsds_monthly", task_id="quality_gate")
          .order_by(TaskInstance.start_date.desc()).first())
    handler = FileTaskHandler(base_log_folder=conf.get("logging", "base_log_folder"))
    stream, _ = handler.read(ti, ti.try_number)
    for msg in stream:
        print(getattr(msg, "event", msg))
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Could not read served logs" not in proc.stdout, proc.stdout[-3000:]
    assert "Quality gate passed for 2026-10" in proc.stdout, proc.stdout[-3000:]


def test_every_table_and_the_manifest_are_published(first_run):
    manifest = json.loads((first_run / "manifest.json").read_text())
    expected_tables = {"MHS000Header", *KEY_OF, *COUNT_ONLY}
    assert set(manifest["tables"]) == expected_tables
    for name, info in manifest["tables"].items():
        path = first_run / info["path"]
        assert path.exists(), name
        assert pq.ParquetFile(path).metadata.num_rows == info["rows"]
    assert manifest["reporting_period"] == PERIOD and manifest["spec_version"] == "6.0"
    assert manifest["run_id"].startswith("manual__")  # made by Airflow's runner


def test_keys_and_counts_match_the_generator(first_run, workspace):
    base, _ = workspace
    expected = pq.read_table(base / "data" / "epr" / "expected_keys.parquet").to_pylist()
    want: dict[str, Counter] = {}
    for row in expected:
        if row["period"] == PERIOD:
            want.setdefault(row["mhsds_table"], Counter())[row["epr_key"]] += 1
    assert want, "generator wrote no expectations for the period"
    # Published + quarantined (each rejected row once) = everything the generator put in scope.
    for idb, (model, cols) in KEY_OF.items():
        t = pq.read_table(first_run / "mhsds" / f"{idb}.parquet", columns=cols).to_pylist()
        got = Counter(_key([r[c] for c in cols]) for r in t)
        for row in _quarantined_rows(first_run, idb):
            got[_key([row[c] for c in cols])] += 1
        assert got == want.get(model, Counter()), f"{idb}: keys differ from the generator's expectations"
    for idb, model in COUNT_ONLY.items():
        n = pq.ParquetFile(first_run / "mhsds" / f"{idb}.parquet").metadata.num_rows
        n += len(_quarantined_rows(first_run, idb))
        assert n == sum(want.get(model, Counter()).values()), idb
    header = pq.read_table(first_run / "mhsds" / "MHS000Header.parquet").to_pylist()
    assert len(header) == 1 and str(header[0]["ReportingPeriodStartDate"]) == "2026-10-01"


def _quarantined_rows(out: Path, idb: str) -> list[dict]:
    """Each rejected row once (quarantine has one row per rejected row and rule; rows with the
    same content, e.g. a duplicated key, appear as often as they were submitted)."""
    path = out / "quarantine" / f"{idb}.parquet"
    if not path.exists():
        return []
    per_body: dict[tuple, Counter] = {}
    first: dict[tuple, dict] = {}
    for r in pq.read_table(path).to_pylist():
        body = tuple((k, str(v)) for k, v in r.items() if not k.startswith("_"))
        per_body.setdefault(body, Counter())[r["_rule_id"]] += 1
        first.setdefault(body, r)
    return [first[b] for b, rules in per_body.items() for _ in range(max(rules.values()))]


def test_quality_outputs_and_submission_package(first_run):
    manifest = json.loads((first_run / "manifest.json").read_text())
    assert manifest["quality"]["status"] == "passed"
    assert sum(manifest["quality"]["rejected_rows"].values()) > 0  # the planted defects
    for name in ("dq_results.parquet", "dqmi.parquet", "dqmi_report.html", "gate.json"):
        assert (first_run / "dq" / name).exists(), name
    assert (first_run / "data_docs" / "index.html").exists()
    sub = json.loads((first_run / "submission" / "submission_manifest.json").read_text())
    assert sub["reporting_period_start"] == "2026-10-01"
    assert {t["idb_table"]: t["rows"] for t in sub["tables"]} == {
        t: v["rows"] for t, v in manifest["tables"].items()
    }


#: Outputs documented (README, "Re-running a period") as carrying run metadata: the run id,
#: creation time, step timings, GX run timestamps or the version stamp of the month.
RUN_METADATA = (
    "manifest.json",
    "dq/gate.json",
    "dq/index.html",  # the IG page names its run
    "data_docs/",
    "dbt_docs/",  # dbt's catalog and manifest carry generation times
    "mhis/mhis_report.html",
    "mhis/mhis_",
)
RUN_METADATA_EXCEPT = (".parquet",)  # every Parquet file is deterministic, MHIS included
#: dq_results names its run in a run_id column: compared row for row without that column
RUN_ID_COLUMN = {"dq/dq_results.parquet": "run_id"}


def _is_run_metadata(rel: str) -> bool:
    return (rel.startswith(RUN_METADATA) and not rel.endswith(RUN_METADATA_EXCEPT)) or rel in RUN_ID_COLUMN


def _without_run_id(root: Path) -> dict[str, list]:
    return {
        rel: pq.read_table(root / rel).drop_columns([col]).to_pylist() for rel, col in RUN_ID_COLUMN.items()
    }


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not _is_run_metadata(str(p.relative_to(root)))
    }


def test_rerun_is_idempotent(first_run, workspace):
    """A rerun of the period gives the same bytes for every output (Parquet: tables, quarantine,
    dq_results, DQMI, MHIS; CSV package; reports) except those that carry run metadata."""
    base, env = workspace
    before = json.loads((first_run / "manifest.json").read_text())
    files_before = _snapshot(first_run.resolve())
    tables_before = _without_run_id(first_run.resolve())
    assert any(k.startswith("quarantine/") for k in files_before) and "dq/dq_results.parquet" in tables_before
    assert any(k.startswith("mhis/") and k.endswith(".parquet") for k in files_before)
    proc = _run(env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    after = json.loads((first_run / "manifest.json").read_text())
    assert after["run_id"] != before["run_id"]
    assert {k: v["sha256"] for k, v in after["tables"].items()} == {
        k: v["sha256"] for k, v in before["tables"].items()
    }
    files_after = _snapshot(first_run.resolve())
    assert sorted(files_after) == sorted(files_before)
    changed = [k for k in files_before if files_before[k] != files_after[k]]
    assert changed == [], f"outputs differ between identical runs: {changed}"
    assert _without_run_id(first_run.resolve()) == tables_before  # same rows, same order


def test_failed_run_leaves_last_good_outputs(first_run, workspace):
    base, env = workspace
    good_target = first_run.resolve()
    good_manifest = (first_run / "manifest.json").read_text()
    broken = base / "broken.sqlite"
    src = sqlite3.connect(base / "data" / "epr" / "epr.sqlite")
    dst = sqlite3.connect(broken)
    src.backup(dst)
    src.close()
    dst.execute("DROP TABLE appointments")  # the source loses a table: the run must fail loudly
    dst.commit()
    dst.close()
    proc = _run({**env, "MHSDS_SOURCE_URL": f"sqlite:///{broken}"})
    assert proc.returncode != 0
    assert "untouched" in proc.stderr
    assert first_run.resolve() == good_target
    assert (first_run / "manifest.json").read_text() == good_manifest
