"""Under the real scheduler: the DAGs run, trigger and fail as a data engineer would see them.

Everything else runs the DAGs with ``airflow dags test``. Here a real Airflow 3 stack (scheduler
with LocalExecutor, dag-processor, api-server; SQLite metadata in a temporary AIRFLOW_HOME,
parallelism 2 on this 2-core machine) runs a small synthetic month:

* a period that is not a month is refused by the REST API before a run exists;
* unpausing ``mhsds_monthly`` creates the scheduled run for the last interval (Airflow's
  behaviour with ``catchup=False``; README, "Operating the pipeline"), and a second, manual run
  is triggered at once;
* both monthly runs succeed without a retry, the ``mhsds_published`` Asset starts ``mhsds_mhis``
  for the published period, and it succeeds although its warehouse tasks compete with the queued
  monthly run (the ``mhsds_warehouse`` pool): no task fails, or waits, on the DuckDB lock;
* task logs read as steps and results (no GX noise) and carry no NHS numbers.

The fixture stops every process it started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from mhsds_pipeline.period import ReportingPeriod

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.scheduler]

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
NHS_NUMBER = re.compile(rb"(?<!\d)999\d{7}(?!\d)")
TERMINAL = {"success", "failed"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """The Airflow REST API v2 (SimpleAuthManager with all users admin: loopback test only)."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}/api/v2{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def runs(self, dag_id: str) -> list[dict]:
        status, doc = self.call("GET", f"/dags/{dag_id}/dagRuns?order_by=run_after")
        assert status == 200, doc
        return doc["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        status, doc = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        assert status == 200, doc
        return doc["task_instances"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from mhsds_pipeline.cli import ensure_pool
    from mhsds_pipeline.synthetic.generator import generate

    base = tmp_path_factory.mktemp("scheduler")
    source = base / "data" / "epr" / "epr.sqlite"
    source.parent.mkdir(parents=True)
    # The scheduled run processes the month before its logical date: on the 1st-5th of a month
    # that is two months back, so three months cover every day the suite may run on.
    latest = ReportingPeriod.latest_complete()
    generate(
        f"sqlite:///{source}", scale=0.05, seed=11, end_period=str(latest), months=3, out_dir=source.parent
    )
    port = _free_port()
    home = base / "airflow"
    home.mkdir()
    env = {
        **os.environ,
        "MHSDS_HOME": str(REPO),
        "MHSDS_DATA_DIR": str(base / "data"),
        "MHSDS_OUTPUT_DIR": str(base / "output"),
        "MHSDS_SOURCE_URL": f"sqlite:///{source}",
        "MHSDS_WAREHOUSE_PATH": str(base / "data" / "warehouse" / "mhsds.duckdb"),
        "MHSDS_TASK_RETRIES": "2",  # as scheduled in production: only retryable errors use them
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "scheduler-test-only-" + "x" * 48,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }
    env.pop("MHSDS_WAREHOUSE_LOCK_TOKEN", None)
    env.pop("AIRFLOW_CTX_DAG_RUN_ID", None)
    migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    pool = ensure_pool(env)  # what `mhsds run` does: the one-slot warehouse pool
    assert pool.returncode == 0, pool.stderr[-2000:]

    procs: list[subprocess.Popen] = []
    for component in ("api-server", "scheduler", "dag-processor"):
        log = (base / f"{component}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [AIRFLOW, component], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
    api = Api(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 240
        parsed: set[str] = set()
        while time.monotonic() < deadline and parsed != {"mhsds_monthly", "mhsds_mhis"}:
            for p in procs:
                assert p.poll() is None, f"an Airflow component exited: see {base}/*.log"
            try:
                parsed = {
                    d for d in ("mhsds_monthly", "mhsds_mhis") if api.call("GET", f"/dags/{d}")[0] == 200
                }
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(2)
        assert parsed == {"mhsds_monthly", "mhsds_mhis"}, f"DAGs not parsed in time: see {base}/*.log"
        yield api, base, env
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)


def test_an_impossible_period_is_refused_before_a_run_exists(stack):
    api, _, _ = stack
    for bad in ("2026-13", "2026-00", "26-10"):
        status, doc = api.call(
            "POST", "/dags/mhsds_monthly/dagRuns", {"logical_date": None, "conf": {"period": bad}}
        )
        assert status == 400, (bad, status, doc)
        assert "period" in json.dumps(doc)
    status, doc = api.call(
        "POST", "/dags/mhsds_mhis/dagRuns", {"logical_date": None, "conf": {"period": "2026-13"}}
    )
    assert status == 400, doc
    assert api.runs("mhsds_monthly") == [] and api.runs("mhsds_mhis") == []


def _wait_until_settled(api: Api, timeout: float) -> tuple[list[dict], list[dict]]:
    """Both monthly runs finished and every MHIS run they triggered finished too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        monthly, mhis = api.runs("mhsds_monthly"), api.runs("mhsds_mhis")
        done = len(monthly) >= 2 and all(r["state"] in TERMINAL for r in monthly)
        if done and mhis and all(r["state"] in TERMINAL for r in mhis):
            time.sleep(5)  # an asset event of the last publish may still be turning into a run
            again = api.runs("mhsds_mhis")
            if len(again) == len(mhis) and all(r["state"] in TERMINAL for r in again):
                return monthly, again
        time.sleep(3)
    raise AssertionError(f"runs did not settle: {api.runs('mhsds_monthly')} {api.runs('mhsds_mhis')}")


@pytest.fixture(scope="module")
def settled(stack):
    api, base, _ = stack
    t0 = time.monotonic()
    for dag_id in ("mhsds_mhis", "mhsds_monthly"):
        status, doc = api.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        assert status == 200 and doc["is_paused"] is False, doc
    # Unpausing creates the run for the last interval (catchup=False still runs the latest one)
    deadline = time.monotonic() + 60
    while not api.runs("mhsds_monthly") and time.monotonic() < deadline:
        time.sleep(1)
    scheduled = [r for r in api.runs("mhsds_monthly") if r["run_type"] == "scheduled"]
    assert len(scheduled) == 1, api.runs("mhsds_monthly")
    logical = date.fromisoformat(scheduled[0]["logical_date"][:10])
    period = str(ReportingPeriod.latest_complete(logical))  # what resolve_period does
    # ... and a second run for the same period at once, while the first is running
    status, manual = api.call(
        "POST", "/dags/mhsds_monthly/dagRuns", {"logical_date": None, "conf": {"period": period}}
    )
    assert status == 200, manual
    monthly, mhis = _wait_until_settled(api, timeout=1200)
    seconds = round(time.monotonic() - t0)
    return {"api": api, "base": base, "period": period, "monthly": monthly, "mhis": mhis, "seconds": seconds}


def _duration(run: dict) -> float:
    from datetime import datetime

    start, end = (datetime.fromisoformat(run[k].replace("Z", "+00:00")) for k in ("start_date", "end_date"))
    return (end - start).total_seconds()


def test_monthly_runs_succeed_and_the_asset_starts_mhis_for_the_period(settled):
    api, period = settled["api"], settled["period"]
    monthly, mhis = settled["monthly"], settled["mhis"]
    assert [r["state"] for r in monthly] == ["success", "success"], monthly
    assert {r["run_type"] for r in monthly} == {"scheduled", "manual"}
    assert mhis and all(r["run_type"] == "asset_triggered" for r in mhis), mhis
    assert [r["state"] for r in mhis] == ["success"] * len(mhis), mhis
    first = mhis[0]
    status, xcom = api.call(
        "GET",
        f"/dags/mhsds_mhis/dagRuns/{first['dag_run_id']}/taskInstances/resolve_periods/xcomEntries/return_value",
    )
    assert status == 200, xcom
    value = json.loads(xcom["value"]) if isinstance(xcom["value"], str) else xcom["value"]
    assert value == [period], xcom
    out = settled["base"] / "output" / period
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reporting_period"] == period and manifest["quality"]["status"] == "passed"
    assert (out / "submission" / "submission_manifest.json").exists()
    assert any((out / "mhis").glob("*.parquet"))
    print(
        f"\nscheduler: monthly runs {[round(_duration(r)) for r in monthly]} s, "
        f"MHIS runs {[round(_duration(r)) for r in mhis]} s, all settled in {settled['seconds']} s"
    )


def test_no_task_retried_or_met_the_warehouse_lock(settled):
    api = settled["api"]
    for dag_id, runs in (("mhsds_monthly", settled["monthly"]), ("mhsds_mhis", settled["mhis"])):
        for run in runs:
            for ti in api.task_instances(dag_id, run["dag_run_id"]):
                assert ti["state"] == "success", (dag_id, ti["task_id"], ti["state"])
                assert ti["try_number"] == 1, (dag_id, ti["task_id"], "was retried")
                if ti["task_id"] not in (
                    "resolve_period",
                    "extract",
                    "package_submission",
                    "resolve_periods",
                ):
                    assert ti["pool"] == "mhsds_warehouse", (dag_id, ti["task_id"], ti["pool"])
    logs = list((settled["base"] / "airflow" / "logs").rglob("*.log"))
    assert logs
    for path in logs:
        text = path.read_bytes()
        assert b"Could not set lock" not in text and b"Conflicting lock" not in text, path
        assert b"WarehouseBusyError" not in text, path


def test_task_logs_read_as_steps_and_carry_no_nhs_numbers(settled):
    base = settled["base"]
    logs = list((base / "airflow" / "logs").rglob("*.log"))
    for path in [*logs, *base.glob("*.log")]:
        assert not NHS_NUMBER.search(path.read_bytes()), f"an NHS number in {path}"
    gate_logs = [p for p in logs if "task_id=quality_gate" in str(p)]
    assert len(gate_logs) == 2
    for path in gate_logs:
        lines = path.read_text().splitlines()
        assert not any("should contain the {batch}" in line for line in lines)
        assert not any(
            '"logger": "great_expectations' in line and '"level": "info"' in line for line in lines
        )
        assert len(lines) < 120, f"{path}: {len(lines)} lines"
        text = "\n".join(lines)
        assert "MHSDS rules:" in text and "GX marts suites:" in text and "Quality gate passed" in text


def test_an_error_that_cannot_succeed_fails_at_once_and_the_alert_names_the_period(settled):
    """A month that has not ended passes the Param pattern but fails resolve_period: under the
    scheduler the task fails on its first try (not up_for_retry for minutes), and the failure
    alert in the task log names the period, the task and the error class."""
    api, base = settled["api"], settled["base"]
    today = date.today()
    open_month = str(ReportingPeriod(today.year, today.month))
    status, run = api.call(
        "POST", "/dags/mhsds_monthly/dagRuns", {"logical_date": None, "conf": {"period": open_month}}
    )
    assert status == 200, run
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        state = next(r["state"] for r in api.runs("mhsds_monthly") if r["dag_run_id"] == run["dag_run_id"])
        if state in TERMINAL:
            break
        time.sleep(2)
    assert state == "failed"
    assert time.monotonic() - t0 < 120
    tis = {ti["task_id"]: ti for ti in api.task_instances("mhsds_monthly", run["dag_run_id"])}
    assert tis["resolve_period"]["state"] == "failed" and tis["resolve_period"]["try_number"] == 1
    assert tis["extract"]["state"] in ("upstream_failed", None)
    log = next(
        (base / "airflow" / "logs").glob(
            f"dag_id=mhsds_monthly/run_id={run['dag_run_id']}/task_id=resolve_period/*.log"
        )
    )
    text = log.read_text()
    assert f"MHSDS {open_month}: task resolve_period failed (PeriodError, not retried)" in text
    assert "has not ended yet" in text
    assert not (base / "data" / "landing" / open_month).exists()
