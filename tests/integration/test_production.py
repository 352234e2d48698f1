"""Production settings, run for real on this machine's PostgreSQL and Redis (no Docker).

The environment of every process comes from docker-compose.yml itself (deploy/compose_env.py):
same executor, auth manager, broker and result-backend forms, connection ids and pipeline
variables; only addresses change (compose services -> 127.0.0.1, throwaway databases, local
directories) and the secrets are generated here. What runs:

* ``deploy/clinical-db-init.sh`` creates a read-only reader on a throwaway clinical source,
  the synthetic EPR generator loads it, and the pipeline extracts from it as that reader;
* ``deploy/airflow-init.sh`` migrates a throwaway PostgreSQL metadata database, creates the
  first Admin and syncs the roles of ``deploy/roles.py``;
* ``airflow api-server`` (Execution API, REST API, FAB login, the Data Docs/MHIS file views)
  and ``airflow celery worker`` on Redis start as subprocesses;
* ``airflow dags test mhsds_monthly --use-executor`` with the CeleryExecutor sends every task
  through Redis to the worker; dbt builds the warehouse on PostgreSQL (dbt-postgres);
* the test then checks the run in the metadata DB, the Celery result backend and the worker
  log, the published Parquet and manifest, the task logs for NHS numbers, and the roles
  through the API server with real logins.

The role definitions, and the alert callbacks in a real (failing) Airflow task run, are also
checked on a throwaway SQLite metadata DB (no PostgreSQL needed).
Everything is removed afterwards: processes (by the process group this test started),
databases, the reader role and the Redis keys (all under a per-run key prefix).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PERIOD = "2026-10"
PG_HOST, PG_PORT = "127.0.0.1", int(os.environ.get("MHSDS_IT_PG_PORT", "5432"))
PG_USER = os.environ.get("MHSDS_IT_PG_USER", "postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", int(os.environ.get("MHSDS_IT_REDIS_PORT", "6379"))
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _load(relpath: str):
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location("deploy_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compose_env = _load("deploy/compose_env.py")
roles = _load("deploy/roles.py")
secrets_scan = _load("deploy/secrets_scan.py")


def _base_env() -> dict[str, str]:
    """This process's environment without any Airflow or pipeline setting (they come from compose)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MHSDS_", "_AIRFLOW"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHON"] = str(BIN / "python")
    return env


def _run(cmd: list[str], env: dict[str, str], log: Path, timeout: float) -> tuple[int, float]:
    """Run to completion, output appended to ``log``; returns (exit code, seconds)."""
    t0 = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    return proc.returncode, time.perf_counter() - t0


def _tail(path: Path, n: int = 6000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Background:
    """A long-running subprocess in its own session, stopped by its process group id."""

    name: str
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, name: str, cmd: list[str], env: dict[str, str], log: Path) -> Background:
        out = log.open("ab")
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        return cls(name, proc, log)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        try:  # children (task supervisors) left in the group
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_until(check, timeout: float, what: str, proc: Background | None = None) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and not proc.alive():
            pytest.fail(f"{proc.name} exited while waiting for {what}:\n{_tail(proc.log)}")
        if check():
            return time.perf_counter() - t0
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{_tail(proc.log) if proc else ''}")


def _http(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""  # not listening (yet)


# ================================================================================================
# Roles in a throwaway SQLite metadata database


@pytest.fixture(scope="module")
def sqlite_airflow(tmp_path_factory):
    base = tmp_path_factory.mktemp("roles")
    compose = compose_env.service_environment(compose_env.load_compose(), "airflow-init")
    assert compose["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER
    env = _base_env()
    env.update(
        AIRFLOW_HOME=str(base / "airflow"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{base / 'airflow.db'}",
        AIRFLOW__CORE__AUTH_MANAGER=compose["AIRFLOW__CORE__AUTH_MANAGER"],
        AIRFLOW__FAB__CONFIG_FILE=str(REPO / "deploy" / "webserver_config.py"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(base / "no_dags"),
    )
    (base / "no_dags").mkdir()
    log = base / "roles.log"
    rc, _ = _run([str(BIN / "airflow"), "db", "migrate"], env, log, timeout=300)
    assert rc == 0, _tail(log)
    rc, _ = _run([str(BIN / "python"), str(REPO / "deploy" / "roles.py"), "sync"], env, log, timeout=300)
    assert rc == 0, _tail(log)
    return env, base / "airflow.db", log


def _sqlite_permissions(db: Path) -> dict[str, set[tuple[str, str]]]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            """
            SELECT r.name, a.name, v.name
              FROM ab_role r
              LEFT JOIN ab_permission_view_role pvr ON pvr.role_id = r.id
              LEFT JOIN ab_permission_view pv ON pv.id = pvr.permission_view_id
              LEFT JOIN ab_permission a ON a.id = pv.permission_id
              LEFT JOIN ab_view_menu v ON v.id = pv.view_menu_id
            """
        ).fetchall()
    finally:
        con.close()
    out: dict[str, set[tuple[str, str]]] = {}
    for role, action, resource in rows:
        out.setdefault(role, set())
        if action:
            out[role].add((action, resource))
    return out


@pytest.mark.slow
def test_roles_are_created_in_a_real_metadata_db(sqlite_airflow):
    _, db, _ = sqlite_airflow
    perms = _sqlite_permissions(db)
    assert {"Admin", "Viewer", "User", "Op"} <= set(perms)  # Airflow's own roles untouched
    for name, wanted in roles.role_definitions().items():
        assert perms.get(name) == set(wanted), name

    ig, fin, de = perms["IGReviewer"], perms["FinanceReader"], perms["DataEngineer"]
    for resource in ("DAG Runs", "DAGs", "Task Instances"):
        for action in ("can_edit", "can_create", "can_delete"):
            assert (action, resource) not in ig, f"IG must not {action} {resource}"
    assert {("can_read", "DAG Runs"), ("can_read", "Task Logs"), ("can_read", "MHSDS Data Docs")} <= ig
    for resource in ("DAGs", "DAG Runs", "Task Logs", "Task Instances", "MHSDS Data Docs"):
        assert ("can_read", resource) not in fin, f"finance must not read {resource}"
    assert ("can_read", "MHIS Outputs") in fin
    assert {("can_create", "DAG Runs"), ("can_edit", "DAGs"), ("can_read", "MHIS Outputs")} <= de


_DRIFT_SCRIPT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("roles", sys.argv[1])
roles = importlib.util.module_from_spec(spec); spec.loader.exec_module(roles)
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
with get_application_builder() as ab:
    sm = ab.sm
    ig = sm.find_role("IGReviewer")
    sm.add_permission_to_role(ig, sm.get_permission("can_edit", "DAG Runs"))  # someone clicks in the UI
    before = roles.drift(sm)
    changes = roles.sync_roles(sm)
    sm.sync_roles()  # what `airflow sync-perm` and the API server's start-up do
    after = roles.drift(sm)
print("RESULT " + json.dumps({"before": before, "changes": changes, "after": after}))
"""


@pytest.mark.slow
def test_role_sync_corrects_drift_and_survives_airflows_own_sync(sqlite_airflow):
    env, _, log = sqlite_airflow
    proc = subprocess.run(
        [str(BIN / "python"), "-c", _DRIFT_SCRIPT, str(REPO / "deploy" / "roles.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["before"] == {"IGReviewer": {"missing": [], "extra": [["can_edit", "DAG Runs"]]}}
    assert result["changes"]["IGReviewer"] == {"added": [], "removed": [["can_edit", "DAG Runs"]]}
    assert result["after"] == {}


_ALERT_PROBE_DAG = """
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from mhsds_pipeline.alerts import failure_callback, retry_callback


@dag(
    dag_id="mhsds_alert_probe",
    schedule=None,
    start_date=pendulum.datetime(2024, 4, 1, tz="UTC"),
    default_args={
        "retries": 1,
        "retry_delay": timedelta(seconds=1),
        "on_failure_callback": failure_callback,
        "on_retry_callback": retry_callback,
    },
)
def probe():
    @task
    def resolve_period() -> str:
        return "2026-10"

    @task
    def dbt_build(period: str) -> None:
        from mhsds_pipeline.transform import TransformError

        raise TransformError(
            f"dbt build failed for reporting period {period}: "
            "test.mhsds.not_null_mhs001_mpi_LocalPatientID.1a2b3c4d5e (fail: MHS00025 mandatory item missing)"
        )

    dbt_build(resolve_period())


probe()
"""


@pytest.mark.slow
def test_alert_callbacks_in_a_real_airflow_run(sqlite_airflow, tmp_path):
    """The callbacks wired as the monthly DAG will wire them (default_args), in a real Airflow 3
    task run: the retry warns, the final failure is critical, both name period, task and rule."""
    env, _, log = sqlite_airflow
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "alert_probe.py").write_text(_ALERT_PROBE_DAG)
    proc = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", "mhsds_alert_probe", "2026-11-23T00:00:00+00:00"],
        env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0  # the run failed, as planted
    rule = "MHS00025, not_null_mhs001_mpi_LocalPatientID"
    assert (
        f"[WARNING] MHSDS 2026-10: task dbt_build failed and will be retried (try 1 of 2) on rule {rule}"
        in out
    )
    assert f"[CRITICAL] MHSDS 2026-10: task dbt_build failed (TransformError) on rule {rule}" in out
    assert "Failing rule: " + rule in out and "Log: http" in out and "Try: 2" in out
    assert "Error: TransformError" in out


# ================================================================================================
# The production stack on PostgreSQL, Redis and a Celery worker

needs_services = pytest.mark.skipif(
    not (_reachable(PG_HOST, PG_PORT) and _reachable(REDIS_HOST, REDIS_PORT)),
    reason=f"PostgreSQL on 127.0.0.1:{PG_PORT} or Redis on 127.0.0.1:{REDIS_PORT} is not reachable",
)


@dataclass
class Stack:
    base: Path
    env: dict[str, str]  # the worker's environment (compose service airflow-worker)
    databases: dict[str, str]
    reader: str
    api_url: str
    logs: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)

    def pg(self, dbname: str):
        import psycopg2

        return psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname)

    def query(self, dbname: str, sql: str, params=()) -> list[tuple]:
        con = self.pg(dbname)
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            con.close()


def _admin():
    import psycopg2

    con = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    con.autocommit = True
    return con


def _drop_everything(databases: dict[str, str], reader: str, key_prefix: str) -> None:
    con = _admin()
    try:
        with con.cursor() as cur:
            for db in databases.values():
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,)
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
            cur.execute(f'DROP ROLE IF EXISTS "{reader}"')
    finally:
        con.close()
    try:
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
        keys = list(client.scan_iter(match=f"{key_prefix}*", count=500))
        if keys:
            client.delete(*keys)
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the test result
        print(f"could not remove Redis keys {key_prefix}*: {exc}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not (_reachable(PG_HOST, PG_PORT) and _reachable(REDIS_HOST, REDIS_PORT)):
        pytest.skip(f"PostgreSQL on 127.0.0.1:{PG_PORT} or Redis on 127.0.0.1:{REDIS_PORT} is not reachable")
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.fail(
            "Airflow 3 on PostgreSQL needs asyncpg (its async metadata engine): add asyncpg to "
            "pyproject.toml and requirements.lock (the apache/airflow image ships it)."
        )
    from cryptography.fernet import Fernet

    from mhsds_pipeline.synthetic.generator import generate

    base = tmp_path_factory.mktemp("prod")
    run = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    databases = {
        "airflow-db": f"mhsds_it_airflow_{run}",
        "clinical-db": f"mhsds_it_epr_{run}",
        "warehouse-db": f"mhsds_it_wh_{run}",
    }
    reader = f"mhsds_it_reader_{run}"
    key_prefix = f"mhsds_it_{run}_"
    api_port = _free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    logs = {name: base / f"{name}.log" for name in ("setup", "api-server", "worker", "dags-test")}
    timings: dict[str, float] = {}
    procs: list[Background] = []

    con = _admin()
    try:
        with con.cursor() as cur:
            for db in databases.values():
                cur.execute(f'CREATE DATABASE "{db}"')
            cur.execute("SHOW server_version")
            server_major = cur.fetchone()[0].split(".")[0]
    finally:
        con.close()
    try:
        compose = compose_env.load_compose()
        assert compose["services"]["airflow-db"]["image"] == f"postgres:{server_major}", (
            "compose's PostgreSQL major differs from the one tested here"
        )

        # secrets as .env would hold them: every variable compose requires, generated here
        required = set(re.findall(r"\$\{([A-Za-z_]\w*):\?", compose_env.COMPOSE_FILE.read_text()))
        secret_env = {name: secrets.token_hex(16) for name in required}
        secret_env["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

        def service_env(service: str) -> dict[str, str]:
            env = _base_env()
            env.update(
                compose_env.local_env(
                    secret_env,
                    service=service,
                    databases=databases,
                    users={"clinical-db": reader},
                    pg_host=PG_HOST,
                    pg_port=PG_PORT,
                    pg_user=PG_USER,
                    redis=f"{REDIS_HOST}:{REDIS_PORT}",
                    api_server=f"127.0.0.1:{api_port}",
                    paths={
                        "/opt/mhsds": str(REPO),
                        "/opt/airflow/webserver_config.py": str(REPO / "deploy" / "webserver_config.py"),
                        "/data": str(base / "data"),
                        "/output": str(base / "output"),
                    },
                )
            )
            env.update(
                # where the image puts them: /opt/airflow/{dags,plugins} <- dags/, deploy/airflow_plugins/
                AIRFLOW_HOME=str(base / "airflow"),
                AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
                AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "deploy" / "airflow_plugins"),
                AIRFLOW__API__BASE_URL=api_url,
                # isolation from anything else on this Redis: every key and channel under a prefix
                AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX=key_prefix,
                # a test run fails fast instead of waiting through retry backoff
                MHSDS_TASK_RETRIES="0",
            )
            return env

        # 1. clinical source: read-only reader (compose's init script), synthetic EPR as the owner
        init_env = _base_env()
        init_env.update(
            PGHOST=PG_HOST,
            PGPORT=str(PG_PORT),
            POSTGRES_USER=PG_USER,
            POSTGRES_DB=databases["clinical-db"],
            MHSDS_SOURCE_USER=reader,
            MHSDS_SOURCE_PASSWORD=secret_env["MHSDS_SOURCE_PASSWORD"],
        )
        rc, timings["clinical-db-init"] = _run(
            ["bash", str(REPO / "deploy" / "clinical-db-init.sh")], init_env, logs["setup"], 60
        )
        assert rc == 0, _tail(logs["setup"])
        t0 = time.perf_counter()
        generate(
            f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{databases['clinical-db']}",
            scale=0.05,
            seed=7,
            end_period=PERIOD,
            months=2,
            out_dir=base / "data" / "epr",
        )
        timings["generate"] = time.perf_counter() - t0

        # 2. airflow-init: migrate, first Admin, roles
        rc, timings["airflow-init"] = _run(
            ["bash", str(REPO / "deploy" / "airflow-init.sh")],
            service_env("airflow-init"),
            logs["setup"],
            400,
        )
        assert rc == 0, _tail(logs["setup"])

        # 3. API server (Execution API for the worker's tasks, REST API, logins, file views)
        t0 = time.perf_counter()
        api = Background.start(
            "api-server",
            [str(BIN / "airflow"), "api-server", "-H", "127.0.0.1", "-p", str(api_port), "-w", "1"],
            service_env("airflow-apiserver"),
            logs["api-server"],
        )
        procs.append(api)
        # 4. Celery worker on Redis, results in the metadata DB
        worker = Background.start(
            "worker",
            [
                str(BIN / "airflow"),
                "celery",
                "worker",
                "-c",
                "2",
                "-H",
                f"mhsds-it-{run}@%h",
                "--skip-serve-logs",
            ],
            service_env("airflow-worker"),
            logs["worker"],
        )
        procs.append(worker)
        _wait_until(
            lambda: _http("GET", f"{api_url}/api/v2/version")[0] == 200,
            180,
            "the API server health check",
            api,
        )
        _wait_until(lambda: " ready." in _tail(logs["worker"], 20000), 180, "the Celery worker", worker)
        timings["services-up"] = time.perf_counter() - t0

        yield Stack(base, service_env("airflow-worker"), databases, reader, api_url, logs, timings)
    finally:
        for proc in reversed(procs):
            proc.stop()
        _drop_everything(databases, reader, key_prefix)
        print("\nproduction stack timings (s): " + json.dumps({k: round(v, 1) for k, v in timings.items()}))


@dataclass
class CeleryRun:
    returncode: int
    run_id: str
    state: str
    tis: list[dict]


@pytest.fixture(scope="module")
def celery_run(stack: Stack) -> CeleryRun:
    logical_date = datetime.now(UTC).replace(microsecond=0).isoformat()
    env = dict(stack.env)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    rc, stack.timings["dag-run"] = _run(
        [
            str(BIN / "airflow"),
            "dags",
            "test",
            "mhsds_monthly",
            logical_date,
            "-c",
            json.dumps({"period": PERIOD}),
            "--use-executor",
        ],
        env,
        stack.logs["dags-test"],
        timeout=480,
    )
    airflow_db = stack.databases["airflow-db"]
    runs = stack.query(airflow_db, "SELECT run_id, state FROM dag_run WHERE dag_id = 'mhsds_monthly'")
    assert len(runs) == 1, runs
    run_id, state = runs[0]
    rows = stack.query(
        airflow_db,
        "SELECT id::text, task_id, state, queue, hostname, try_number, external_executor_id FROM task_instance "
        "WHERE dag_id = 'mhsds_monthly' AND run_id = %s",
        (run_id,),
    )
    tis = [
        dict(
            zip(
                ("id", "task_id", "state", "queue", "hostname", "try_number", "external_executor_id"),
                r,
                strict=True,
            )
        )
        for r in rows
    ]
    return CeleryRun(rc, run_id, state, tis)


@needs_services
@pytest.mark.postgres
@pytest.mark.slow
def test_monthly_dag_succeeds_on_postgres_through_celery(stack, celery_run):
    assert celery_run.returncode == 0, _tail(stack.logs["dags-test"]) + _tail(stack.logs["worker"])
    assert celery_run.state == "success"
    task_ids = {ti["task_id"] for ti in celery_run.tis}
    assert {"resolve_period", "extract", "load_raw", "dbt_build", "publish"} <= task_ids
    assert {ti["task_id"]: ti["state"] for ti in celery_run.tis} == dict.fromkeys(task_ids, "success")


@needs_services
@pytest.mark.postgres
@pytest.mark.slow
def test_every_task_ran_on_the_celery_worker(stack, celery_run):
    """Each task instance went Redis -> worker: the worker's supervisor ran its workload, the
    executor's Celery task id is the one the worker executed, and the result is in the
    Celery result backend (db+postgresql) in the metadata DB."""

    def worker_log() -> str:
        return stack.logs["worker"].read_text(errors="replace")

    # the run is marked successful as soon as the last task reports; its worker may still be
    # writing "Workload finished" and storing the Celery result
    ids = [ti["id"] for ti in celery_run.tis]
    _wait_until(
        lambda: all(f"workload_id={i}" in worker_log() for i in ids), 60, "the worker's last log lines"
    )
    _wait_until(
        lambda: (
            stack.query(stack.databases["airflow-db"], "SELECT count(*) FROM celery_taskmeta")[0][0]
            >= len(ids)
        ),
        60,
        "the Celery results",
    )
    worker_log = worker_log()
    dags_test_log = stack.logs["dags-test"].read_text(errors="replace")
    results = dict(stack.query(stack.databases["airflow-db"], "SELECT task_id, status FROM celery_taskmeta"))
    for ti in celery_run.tis:
        assert re.search(rf"Workload finished .*final_state=success.*workload_id={ti['id']}", worker_log), (
            f"{ti['task_id']} was not run by the Celery worker"
        )
        celery_ids = re.findall(
            rf"Setting external_executor_id for <TaskInstance: mhsds_monthly\.{ti['task_id']} [^>]*> to ([0-9a-f-]{{36}})",
            dags_test_log,
        )
        # the executor records the Celery task id on the task instance; its log line saying so can
        # be missing when the executor's event loop is busy, so the metadata DB is the record
        celery_id = ti["external_executor_id"] or (celery_ids[-1] if celery_ids else None)
        assert celery_id, f"no Celery task id for {ti['task_id']}"
        assert f"execute_workload[{celery_id}] succeeded" in worker_log
        assert results.get(celery_id) == "SUCCESS", ti["task_id"]
        assert ti["queue"] == "default" and ti["hostname"]
    stack.timings["tasks-on-worker"] = len(celery_run.tis)


@needs_services
@pytest.mark.postgres
@pytest.mark.slow
def test_outputs_published_from_the_postgres_source_and_warehouse(stack, celery_run):
    import pyarrow.parquet as pq

    assert celery_run.state == "success"
    out = stack.base / "output" / PERIOD
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reporting_period"] == PERIOD and manifest["run_id"] == celery_run.run_id
    assert len(manifest["tables"]) >= 14
    for name, info in manifest["tables"].items():
        path = out / info["path"]
        assert path.exists(), name
        assert pq.ParquetFile(path).metadata.num_rows == info["rows"], name
    # extracted as the read-only reader, and the URL in the manifest hides its password
    assert manifest["source"]["url"] == (
        f"postgresql+psycopg2://{stack.reader}:***@{PG_HOST}:{PG_PORT}/{stack.databases['clinical-db']}"
    )
    # the marts were built by dbt-postgres in the warehouse database: every extracted patient
    # reached the MPI mart; publication holds those the quality gate did not quarantine
    (count,) = stack.query(stack.databases["warehouse-db"], "SELECT count(*) FROM analytics.mhs001_mpi")[0]
    assert count == manifest["source"]["extract_row_counts"]["patients"] > 0
    assert 0 < manifest["tables"]["MHS001MPI"]["rows"] <= count


@needs_services
@pytest.mark.postgres
@pytest.mark.slow
def test_the_runs_logs_hold_no_nhs_numbers(stack, celery_run):
    log_dir = Path(stack.env["AIRFLOW_HOME"]) / "logs"
    task_logs = list(log_dir.rglob("task_id=*/attempt=*.log"))
    assert len(task_logs) >= len(celery_run.tis)
    findings, files = secrets_scan.scan_log_dir(log_dir, *stack.logs.values())
    assert files >= len(task_logs) + len(stack.logs)
    assert findings == [], "\n".join(map(str, findings))


@needs_services
@pytest.mark.postgres
@pytest.mark.slow
def test_files_served_to_ig_and_finance_hold_no_nhs_numbers(stack, celery_run):
    """What the file views serve (Data Docs, DQ drill-downs) must carry pseudonymised keys only."""
    month = stack.base / "output" / PERIOD
    served = [month / d for d in ("data_docs", "dq", "mhis") if (month / d).is_dir()]
    assert served, "the run published neither Data Docs nor DQ results"
    text_files = [p for d in served for p in d.rglob("*") if p.suffix in (".html", ".json", ".csv", ".txt")]
    findings, files = secrets_scan.scan_log_dir(*text_files) if text_files else ([], 0)
    assert findings == [], "\n".join(map(str, findings[:20]))


_USERS_SCRIPT = """
import json, sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
with get_application_builder() as ab:
    for u in json.loads(sys.argv[1]):
        role = ab.sm.find_role(u["role"])
        assert role is not None, u["role"]
        assert ab.sm.add_user(u["username"], u["username"], "Test", u["username"] + "@example.invalid", role, u["password"])
print("users created")
"""


@needs_services
@pytest.mark.postgres
@pytest.mark.slow
def test_roles_through_the_api_server(stack, celery_run):
    """Real logins (FAB, POST /auth/token) against the API server: what each role may do to
    the DAG, its runs and logs, and to the Data Docs and MHIS file views."""
    users = [
        {"username": f"{role.lower()}_it", "role": role, "password": secrets.token_hex(12)}
        for role in ("DataEngineer", "IGReviewer", "FinanceReader")
    ]
    proc = subprocess.run(
        [str(BIN / "python"), "-c", _USERS_SCRIPT, json.dumps(users)],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    tokens = {}
    for u in users:
        status, body = _http(
            "POST", f"{stack.api_url}/auth/token", body={"username": u["username"], "password": u["password"]}
        )
        assert status == 201, body
        tokens[u["role"]] = json.loads(body)["access_token"]

    # an MHIS output for the month, so the file view has something to serve
    mhis = stack.base / "output" / PERIOD / "mhis"
    mhis.mkdir(exist_ok=True)
    (mhis / "it_probe.csv").write_text("category,spend\n")
    docs = stack.base / "output" / PERIOD / "data_docs"
    docs.mkdir(exist_ok=True)
    if not (docs / "index.html").exists():
        (docs / "index.html").write_text("<h1>Data Docs</h1>")

    run = urllib.parse.quote(celery_run.run_id, safe="")
    dag = f"{stack.api_url}/api/v2/dags/mhsds_monthly"
    files = f"{stack.api_url}/mhsds-files"
    checks = [
        # (method, url, body, DataEngineer, IGReviewer, FinanceReader)
        ("GET", dag, None, 200, 200, 403),
        ("GET", f"{dag}/dagRuns/{run}", None, 200, 200, 403),
        ("GET", f"{dag}/dagRuns/{run}/taskInstances/extract/logs/1", None, 200, 200, 403),
        ("GET", f"{dag}/dagRuns/{run}/taskInstances/extract/xcomEntries", None, 200, 403, 403),
        ("POST", f"{dag}/dagRuns", {"logical_date": None, "conf": {"period": PERIOD}}, None, 403, 403),
        ("PATCH", dag, {"is_paused": True}, 200, 403, 403),
        ("GET", f"{files}/data-docs/{PERIOD}/", None, 200, 200, 403),
        ("GET", f"{files}/mhis/{PERIOD}/it_probe.csv", None, 200, 403, 200),
        ("GET", f"{files}/mhis/", None, 200, 403, 200),
    ]
    got, want = {}, {}
    for method, url, body, *expected in checks:
        for role, status in zip(("DataEngineer", "IGReviewer", "FinanceReader"), expected, strict=True):
            if status is None:
                continue  # DataEngineer may trigger: not done here (no scheduler would run it)
            key = f"{role} {method} {url.removeprefix(stack.api_url)}"
            got[key] = _http(method, url, tokens[role], body)[0]
            want[key] = status
    assert got == want
    assert _http("GET", dag)[0] == 401  # no token, no access


@needs_services
@pytest.mark.postgres
@pytest.mark.slow
def test_deadline_dag_warns_through_the_worker(stack, celery_run):
    """The daily deadline DAG, run as of 16 December 2026 on the same stack: November is due on
    the 20th and has no submission package, so the check warns (log sink) and returns it."""
    rc, stack.timings["deadline-run"] = _run(
        [
            str(BIN / "airflow"),
            "dags",
            "test",
            "mhsds_deadline",
            "2026-12-16T07:00:00+00:00",
            "--use-executor",
        ],
        stack.env,
        stack.logs["dags-test"],
        timeout=240,
    )
    assert rc == 0, _tail(stack.logs["dags-test"]) + _tail(stack.logs["worker"])
    rows = stack.query(
        stack.databases["airflow-db"],
        "SELECT x.value FROM xcom x JOIN dag_run d ON d.id = x.dag_run_id "
        "WHERE d.dag_id = 'mhsds_deadline' AND x.task_id = 'check_submission_deadline' AND x.key = 'return_value'",
    )
    assert len(rows) == 1
    value = rows[0][0]
    messages = json.loads(value) if isinstance(value, str) else value
    expected = stack.base / "output" / "2026-11" / "submission" / "submission_manifest.json"
    assert messages == [
        f"MHSDS 2026-11: submission not packaged; the cut-off is 2026-12-20, in 4 days. Expected {expected}. "
        "Run or fix the mhsds_monthly DAG for 2026-11, then package the submission."
    ]
    logs = Path(stack.env["AIRFLOW_HOME"]) / "logs"
    pattern = "dag_id=mhsds_deadline/*/task_id=check_submission_deadline/attempt=1.log"
    _wait_until(
        lambda: any(
            "[WARNING] MHSDS 2026-11: submission not packaged" in p.read_text() for p in logs.glob(pattern)
        ),
        60,
        "the alert in the deadline task's log",
    )
