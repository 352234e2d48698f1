"""The warehouse lock: one writer at a time, and a refusal that names who holds it.

The embedded warehouse is one DuckDB file, and DuckDB allows one writing process per file: a
second process gets a raw ``IO Error: Could not set lock on file``. Worse than the error, two
runs interleaving their steps would build one period's marts from another period's ``raw_epr``.
So every step that reads or writes the warehouse runs under this lock:

* **Inside Airflow** the ``mhsds_warehouse`` pool (one slot) already serialises those tasks
  across ``mhsds_monthly`` and ``mhsds_mhis``, so a task never meets a held lock from another
  task. If a run outside Airflow holds it, the task waits (``MHSDS_LOCK_WAIT_SECONDS``, default
  30 minutes) and then fails with :class:`WarehouseBusyError`, which is retried.
* **Outside Airflow** (``mhsds run``, ``mhsds step``, ``mhsds mhis``) the whole run holds the
  lock and a second run is refused at once with a message naming the run that holds it.
  ``mhsds run`` hands its lock to the ``airflow dags test`` it starts through the
  ``MHSDS_WAREHOUSE_LOCK_TOKEN`` environment variable, so its own tasks proceed.

The lock is an exclusive ``flock`` on ``<warehouse>.lock``: the kernel releases it when the
holding process dies, so a lock left by a killed run (``kill -9``, OOM) is recovered by the next
run without anyone deleting files; the stale holder record is reported and overwritten. The
file holds who has the lock (run id, period, step, pid, host, since): never patient data.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mhsds_pipeline.errors import WarehouseBusyError

log = logging.getLogger(__name__)

TOKEN_ENV = "MHSDS_WAREHOUSE_LOCK_TOKEN"
WAIT_ENV = "MHSDS_LOCK_WAIT_SECONDS"  # declared and validated in mhsds_pipeline.settings
DEFAULT_AIRFLOW_WAIT_SECONDS = 1800.0

_held: dict[str, int] = {}  # lock path -> nesting depth in this process


@dataclass(frozen=True)
class Holder:
    run_id: str
    period: str | None
    step: str | None
    pid: int
    host: str
    since: str
    token: str

    def describe(self) -> str:
        what = " ".join(
            x for x in (self.period and f"period {self.period}", self.step and f"step {self.step}") if x
        )
        return (
            f"run {self.run_id}"
            + (f" ({what})" if what else "")
            + f", pid {self.pid} on {self.host} since {self.since}"
        )


def lock_path(settings) -> Path:
    """``<warehouse file>.lock`` for DuckDB; one lock per warehouse under the data dir otherwise."""
    if settings.warehouse_target == "duckdb":
        path = Path(settings.warehouse_path)
        return path.with_name(path.name + ".lock")
    return Path(settings.data_dir) / "locks" / f"warehouse-{settings.warehouse_target}.lock"


def read_holder(path: Path) -> Holder | None:
    try:
        raw = path.read_text()
        return Holder(**json.loads(raw)) if raw.strip() else None
    except (OSError, ValueError, TypeError):
        return None


def _wait_seconds() -> float:
    """How long to wait for the lock: the setting (validated: a bad MHSDS_LOCK_WAIT_SECONDS is a
    ConfigurationError, no longer silently the default), else 0 outside Airflow (refuse at
    once) and 30 minutes inside it."""
    from mhsds_pipeline.settings import read_settings

    configured = read_settings().lock_wait_seconds
    if configured is not None:
        return configured
    inside_airflow = bool(os.environ.get("AIRFLOW_CTX_DAG_RUN_ID"))
    return DEFAULT_AIRFLOW_WAIT_SECONDS if inside_airflow else 0.0


@contextmanager
def warehouse_lock(
    settings,
    run_id: str,
    period: str | None = None,
    step: str | None = None,
    wait_seconds: float | None = None,
    poll_seconds: float = 1.0,
    token: str | None = None,
) -> Iterator[Holder | None]:
    """Hold the warehouse for the body; re-entrant within a process; inherited by a child
    process whose ``MHSDS_WAREHOUSE_LOCK_TOKEN`` matches the holder's token."""
    wait = _wait_seconds() if wait_seconds is None else wait_seconds
    with _exclusive(
        lock_path(settings), "The warehouse", run_id, period, step, wait, poll_seconds, token
    ) as held:
        yield held


def publication_lock_path(settings, period: str) -> Path:
    """Beside the warehouse lock in the data directory: the output tree holds outputs only."""
    return Path(settings.data_dir) / "locks" / f"published-{period}.lock"


@contextmanager
def publication_lock(
    settings, period: str, run_id: str, step: str, wait_seconds: float = 900.0, poll_seconds: float = 0.5
) -> Iterator[Holder | None]:
    """Hold a period's published month while changing it. Three steps make a new version of
    ``output/<YYYY-MM>`` or point into it: ``publish`` (the MHSDS tables), ``package_submission``
    (links ``submission`` into the version it packaged) and ``publish_mhis`` (a new version =
    the current one + ``mhis/``). The scheduler may run the last two at once (the Asset starts
    MHIS as soon as ``publish`` ends); without this lock MHIS could copy the version before the
    package link was made and promote it, leaving the month without its ``submission`` link.
    These steps take seconds, so a second holder waits rather than fails."""
    path = publication_lock_path(settings, period)
    with _exclusive(
        path, f"The published month {period}", run_id, period, step, wait_seconds, poll_seconds, None
    ) as held:
        yield held


@contextmanager
def _exclusive(
    path: Path,
    what: str,
    run_id: str,
    period: str | None,
    step: str | None,
    wait: float,
    poll_seconds: float,
    token: str | None,
) -> Iterator[Holder | None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    if _held.get(key):
        _held[key] += 1
        try:
            yield None
        finally:
            _held[key] -= 1
        return
    inherited = os.environ.get(TOKEN_ENV)
    deadline = time.monotonic() + max(wait, 0.0)
    fh = path.open("a+")
    parent: Holder | None = None
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_holder(path)
            if inherited and holder is not None and holder.token == inherited:
                parent = holder
                break
            if time.monotonic() >= deadline:
                who = holder.describe() if holder else "another process (no holder record)"
                raise WarehouseBusyError(
                    f"{what} ({key.removesuffix('.lock')}) is in use by {who}. "
                    "Wait for that run to finish (or stop it), then run again"
                    + (f"; waited {wait:.0f} s." if wait else ".")
                )
            time.sleep(poll_seconds)
        if parent is not None:
            log.info("warehouse lock held by the parent %s: proceeding", parent.describe())
            _held[key] = 1
            try:
                yield parent
            finally:
                _held.pop(key, None)
            return
        stale = read_holder(path)
        if stale is not None:
            log.warning(
                "recovered the warehouse lock left by %s (that process ended without releasing it)",
                stale.describe(),
            )
        me = Holder(
            run_id=run_id,
            period=period,
            step=step,
            pid=os.getpid(),
            host=socket.gethostname(),
            since=datetime.now(UTC).replace(microsecond=0).isoformat(),
            token=token or uuid.uuid4().hex,
        )
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(me.__dict__))
        fh.flush()
        _held[key] = 1
        try:
            yield me
        finally:
            _held.pop(key, None)
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()
