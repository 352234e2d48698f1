"""The submission audit log: one JSON line per event, appended, never rewritten.

Information Governance asks who produced or sent which data, when, from what. Each line records:

* ``who``: operating-system user, host, process id and, inside Airflow, the DAG, run, task and
  try (from the ``AIRFLOW_CTX_*`` variables Airflow sets for a running task);
* ``event`` and ``what``: package_created / package_unchanged / package_refused / access_loaded
  / access_load_failed, with period, version, path, row counts and check failures;
* ``when``: UTC timestamp;
* ``inputs`` / ``outputs``: sha256 of every file read and written.

Lines never contain patient data or row keys, only counts, rule ids, row numbers and hashes.
Each line also carries ``seq`` and ``prev_sha256`` (the hash of the previous line), so removing or
editing a line breaks the chain: :func:`verify` says where. Appends are serialised with an
exclusive ``flock`` (POSIX; on Windows the loader appends without a lock).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

try:  # POSIX only; the Windows loader runs without locking
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

AUDIT_LOG_NAME = "audit_log.jsonl"
GENESIS = "0" * 64
_AIRFLOW_VARS = {
    "dag_id": "AIRFLOW_CTX_DAG_ID",
    "dag_run_id": "AIRFLOW_CTX_DAG_RUN_ID",
    "task_id": "AIRFLOW_CTX_TASK_ID",
    "try_number": "AIRFLOW_CTX_TRY_NUMBER",
    "logical_date": "AIRFLOW_CTX_LOGICAL_DATE",
    "dag_owner": "AIRFLOW_CTX_DAG_OWNER",
}


def audit_log_path(settings) -> Path:
    return settings.output_dir / "submissions" / AUDIT_LOG_NAME


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (created if absent)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def who() -> dict:
    """The acting identity: user, host, process and (inside a task) the Airflow run."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    airflow = {k: os.environ[v] for k, v in _AIRFLOW_VARS.items() if os.environ.get(v)}
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid(), "airflow": airflow or None}


def _last_line(fh) -> bytes | None:
    """The last non-empty line of an open binary file, read backwards from the end."""
    fh.seek(0, os.SEEK_END)
    end = fh.tell()
    if end == 0:
        return None
    buf, pos = b"", end
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        fh.seek(pos)
        buf = fh.read(step) + buf
        stripped = buf.rstrip(b"\n")
        if b"\n" in stripped:
            return stripped.rsplit(b"\n", 1)[1]
    return buf.rstrip(b"\n") or None


def append(
    path: Path,
    event: str,
    *,
    run_id: str | None,
    what: dict,
    inputs: dict | None = None,
    outputs: dict | None = None,
) -> dict:
    """Append one event (under an exclusive lock) and return the record written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            last = _last_line(fh)
            prev = json.loads(last) if last else None
            record = {
                "seq": (prev["seq"] + 1) if prev else 1,
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "event": event,
                "who": who(),
                "run_id": run_id,
                "what": what,
                "inputs": inputs or {},
                "outputs": outputs or {},
                "prev_sha256": hashlib.sha256(last).hexdigest() if last else GENESIS,
            }
            line = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
            fh.seek(0, os.SEEK_END)
            fh.write(line + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return record


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def verify(path: Path) -> list[str]:
    """Problems with the hash chain (empty list: every line is intact and in order)."""
    problems, prev_hash, prev_seq = [], GENESIS, 0
    if not path.exists():
        return problems
    for n, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            problems.append(f"line {n}: not JSON")
            prev_hash = hashlib.sha256(raw).hexdigest()
            continue
        if rec.get("prev_sha256") != prev_hash:
            problems.append(f"line {n}: prev_sha256 does not match line {n - 1} (line removed or edited)")
        if rec.get("seq") != prev_seq + 1:
            problems.append(f"line {n}: seq {rec.get('seq')} follows {prev_seq}")
        prev_hash, prev_seq = hashlib.sha256(raw).hexdigest(), rec.get("seq") or prev_seq
    return problems
