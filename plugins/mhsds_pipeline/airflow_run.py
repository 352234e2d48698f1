"""``mhsds run`` with Airflow's runner, as a person reads it.

``airflow dags test`` runs a DAG in one process and writes every log line of every task to its
own stdout: about 5,000 lines for one month. Here that stream goes to a run log file (its path
is printed), and the console gets one line per task as it finishes: state, duration and a short
note from the task's XCom summary (:mod:`mhsds_pipeline.summaries`).

``dags test`` runs tasks in-process, so no worker writes the per-task log files the Airflow UI
reads ("Could not read served logs"). After the run, each task's lines (between Airflow's
``[DAG TEST] starting task_id=...`` and ``end task`` markers) are written as structured log
lines to the path the UI reads for that task instance and try.

Task states and XComs are read from Airflow's metadata database with SQLAlchemy (read-only
queries on ``dag_run``, ``task_instance`` and ``xcom``): nothing here imports Airflow, so the
console stays responsive while the DAG runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

#: Airflow 3's default ``[logging] log_filename_template`` (relative to ``base_log_folder``).
LOG_PATH = "dag_id={dag_id}/run_id={run_id}/task_id={task_id}/{map_part}attempt={attempt}.log"
FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}
_LINE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\dT[\d:.]+Z?) \[(?P<level>\w+)\s*\] (?P<event>.*)$")
_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    start: datetime | None
    end: datetime | None

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (_dt(self.end) - _dt(self.start)).total_seconds()


def _dt(value) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value).replace("Z", "").split("+")[0])


class Metadata:
    """Read-only queries on Airflow's metadata database (the connection Airflow is configured with)."""

    def __init__(self, url: str):
        self.engine = sa.create_engine(url)

    def last_run_pk(self, dag_id: str) -> int:
        with self.engine.connect() as c:
            value = c.execute(
                sa.text("SELECT max(id) FROM dag_run WHERE dag_id = :d"), {"d": dag_id}
            ).scalar()
        return int(value or 0)

    def run_after(self, dag_id: str, pk: int) -> tuple[int, str, str | None] | None:
        """The newest run of ``dag_id`` created after run ``pk``: (id, run_id, state)."""
        sql = "SELECT id, run_id, state FROM dag_run WHERE dag_id = :d AND id > :pk ORDER BY id DESC LIMIT 1"
        with self.engine.connect() as c:
            row = c.execute(sa.text(sql), {"d": dag_id, "pk": pk}).first()
        return (int(row[0]), str(row[1]), row[2]) if row else None

    def tasks(self, dag_id: str, run_id: str) -> list[TaskRow]:
        sql = (
            "SELECT task_id, map_index, state, try_number, start_date, end_date FROM task_instance "
            "WHERE dag_id = :d AND run_id = :r ORDER BY start_date IS NULL, start_date, task_id, map_index"
        )
        with self.engine.connect() as c:
            rows = c.execute(sa.text(sql), {"d": dag_id, "r": run_id}).all()
        return [TaskRow(r[0], int(r[1]), r[2], int(r[3] or 0), r[4], r[5]) for r in rows]

    def xcom(self, run_pk: int, task_id: str, map_index: int):
        sql = (
            "SELECT value FROM xcom WHERE dag_run_id = :pk AND task_id = :t AND map_index = :m "
            "AND key = 'return_value'"
        )
        with self.engine.connect() as c:
            value = c.execute(sa.text(sql), {"pk": run_pk, "t": task_id, "m": map_index}).scalar()
        if isinstance(value, bytes | str):
            try:
                return json.loads(value)
            except ValueError:
                return None
        return value

    def dispose(self) -> None:
        self.engine.dispose()


def task_note(task_id: str, value) -> str:
    """One short phrase from a task's XCom summary (counts only: never an identifier)."""
    if not isinstance(value, dict):
        return ""
    n = value.get
    notes: dict[str, Callable[[], str]] = {
        "extract": lambda: f"{n('rows', 0):,} rows from {n('tables', 0)} tables",
        "load_raw": lambda: f"{n('rows', 0):,} rows loaded",
        "validate_raw": lambda: f"{n('checks', 0):,} checks",
        "dbt_build": lambda: f"{n('built', 0)} models and seeds built, {n('tests_passed', 0)} tests passed",
        "quality_gate": lambda: (
            f"{n('status')}: {n('checks', 0):,} checks, {n('rows_quarantined', 0):,} rows quarantined"
        ),
        "publish": lambda: f"{n('tables', 0)} tables, {n('rows', 0):,} rows promoted",
        "package_submission": lambda: f"package {n('version')} ({n('status')})",
        "build_finance": lambda: f"{n('built', 0)} finance models built, {n('tests_passed', 0)} tests passed",
        "publish_mhis": lambda: (
            f"{n('period')}: {n('metrics_met', 0)} met, {n('metrics_not_met', 0)} not met, "
            f"{n('metrics_incomplete', 0)} incomplete"
        ),
    }
    make = notes.get(task_id)
    try:
        return make() if make else ""
    except (TypeError, ValueError):
        return ""


def format_task(row: TaskRow, note: str = "") -> str:
    seconds = "" if row.seconds is None else f"{row.seconds:7.1f} s"
    return f"  {row.label:<22} {row.state or '?':<15} {seconds:>9}  {note}".rstrip()


def run_dag_test(
    args: list[str],
    env: dict[str, str],
    dag_id: str,
    log_file: Path,
    out=sys.stdout,
    poll_seconds: float = 1.0,
) -> tuple[int, str | None, str | None]:
    """Run ``airflow dags test`` (``args``), its output appended to ``log_file``; print one line
    per finished task. Returns (exit code, run id, run state)."""
    meta = Metadata(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        before = meta.last_run_pk(dag_id)
        printed: set[tuple[str, int]] = set()
        run: tuple[int, str, str | None] | None = None
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a", encoding="utf-8") as sink:
            proc = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
            while True:
                done = proc.poll() is not None
                run = meta.run_after(dag_id, before) or run
                if run is not None:
                    _print_finished(meta, dag_id, run, printed, out)
                if done:
                    break
                time.sleep(poll_seconds)
        run = meta.run_after(dag_id, before) or run
        if run is None:
            return proc.returncode, None, None
        _print_finished(meta, dag_id, run, printed, out)
        return proc.returncode, run[1], run[2]
    finally:
        meta.dispose()


def _print_finished(meta: Metadata, dag_id: str, run, printed: set, out) -> None:
    for row in meta.tasks(dag_id, run[1]):
        key = (row.task_id, row.map_index)
        if key in printed or row.state not in FINISHED:
            continue
        printed.add(key)
        note = task_note(row.task_id, meta.xcom(run[0], row.task_id, row.map_index))
        print(format_task(row, note), file=out, flush=True)


# ------------------------------------------------------------------------------ task log files


def split_task_lines(lines: Iterable[str]) -> dict[tuple[str, int], list[str]]:
    """Each task's lines of a ``dags test`` output, keyed by (task id, map index)."""
    sections: dict[tuple[str, int], list[str]] = {}
    current: tuple[str, int] | None = None
    for line in lines:
        line = line.rstrip("\n")
        if m := _START.search(line):
            current = (m["task"], int(m["map"]))
            sections.setdefault(current, [])
        if current is not None:
            sections[current].append(line)
        if (m := _END.search(line)) and current == (m["task"], int(m["map"])):
            current = None
    return sections


def structured(line: str) -> str:
    """A console log line as the JSON line Airflow's task log reader parses (timestamp, level,
    event); a line without the console prefix (a traceback) is kept as the event text."""
    m = _LINE.match(_strip_ansi(line))
    if not m:
        return json.dumps({"event": _strip_ansi(line)})
    ts = m["ts"] if m["ts"].endswith("Z") else m["ts"] + "Z"
    return json.dumps({"timestamp": ts, "level": m["level"], "event": m["event"]})


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def write_task_logs(
    log_file: Path, base_log_folder: Path, dag_id: str, run_id: str, tasks: list[TaskRow]
) -> int:
    """Write each task instance's lines where the Airflow UI reads them; returns files written."""
    with log_file.open(encoding="utf-8", errors="replace") as fh:
        sections = split_task_lines(fh)
    written = 0
    for row in tasks:
        lines = sections.get((row.task_id, row.map_index))
        if not lines or row.try_number < 1:
            continue
        rel = LOG_PATH.format(
            dag_id=dag_id,
            run_id=run_id,
            task_id=row.task_id,
            map_part="" if row.map_index < 0 else f"map_index={row.map_index}/",
            attempt=row.try_number,
        )
        path = base_log_folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(structured(line) for line in lines) + "\n", encoding="utf-8")
        written += 1
    return written


def file_task_logs(env: dict[str, str], dag_id: str, run_id: str, log_file: Path) -> int:
    """After a ``dags test`` run: the per-task log files for the Airflow UI."""
    base = Path(env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or Path(env["AIRFLOW_HOME"]) / "logs")
    meta = Metadata(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        tasks = meta.tasks(dag_id, run_id)
    finally:
        meta.dispose()
    return write_task_logs(log_file, base, dag_id, run_id, tasks)
