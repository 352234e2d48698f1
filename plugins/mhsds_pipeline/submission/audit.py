"""The submission audit log: one JSON line per event, appended, never rewritten, and keyed so that
any edit, deletion, truncation or re-chaining shows.

Information Governance asks who produced or sent which data, when, from what. Each line records:

* ``who``: operating-system user, host, process id and, inside Airflow, the DAG, run, task and
  try (from the ``AIRFLOW_CTX_*`` variables Airflow sets for a running task);
* ``event`` and ``what``: package_created / package_unchanged / package_refused / access_loaded
  / access_load_failed, with period, version, path, row counts and check failures;
* ``when``: UTC timestamp;
* ``inputs`` / ``outputs``: sha256 of every file read and written.

Lines never contain patient data or row keys, only counts, rule ids, row numbers and hashes.

Integrity (scheme ``hmac-sha256/1``)
------------------------------------
Every line carries ``seq``, ``key_id`` (a fingerprint of the key, not the key), ``prev_mac`` (the
previous line's ``mac``) and ``mac`` = HMAC-SHA256(key, the line's canonical JSON without
``mac``). The key is secret (:func:`load_key`): ``MHSDS_AUDIT_KEY``, or a file named by
``MHSDS_AUDIT_KEY_FILE`` (a Docker/Kubernetes secret), or, on the embedded set-up only, a random
key generated once into ``<data_dir>/secrets/audit_hmac.key`` (mode 0600, outside git). A chain
of plain hashes can be recomputed by anyone who edits the file; a chain of MACs cannot.

A MAC chain alone cannot show that lines were cut off the end, so the head is anchored outside
the log: ``audit_head.json`` beside the log (seq and mac of the last line, itself MACed, rewritten
after every append), and ``audit_anchor`` in every package's ``submission_manifest.json`` (the
head when the package was built). Every package on disk must also have its ``package_created``
line, whose ``submission_manifest_sha256`` binds manifest and log to each other.

Threat model. Detected, by anyone holding the key:

* any change to any byte of a keyed line, including the last one (``mac`` / canonical form);
* a line deleted, inserted, duplicated or reordered (``seq`` and ``prev_mac``);
* the log re-chained: lines rewritten with recomputed plain hashes, or re-signed with another
  key (``mac`` / ``key_id``); unkeyed lines appended after keyed ones (a downgrade);
* the tail truncated, by one line or many: the head checkpoint or a package manifest anchors a
  seq the log no longer has; a package exists whose ``package_created`` line is gone;
* the wrong key configured (every line reports its ``key_id``); no key: verification refuses.

Not detected (residual risks; mitigate outside this module):

* anyone who holds the key can rewrite the whole log consistently: HMAC is a shared secret, not
  a signature. Keep the key in a secrets store, readable only by the pipeline's workers;
* a rollback: truncating the log, restoring an older copy of ``audit_head.json`` and deleting
  every package built since. Only copies held elsewhere (manifests sent with uploads, backups,
  WORM storage) show that. Cutting only the lines after the newest anchor and restoring the head
  from then looks like a crash: the package whose line is gone is reported as unrecorded (needs
  repair, never silently passed), and repair writes a ``recovered`` line, not the original;
* deleting the log, the head checkpoint and every anchored manifest together;
* lines written by the old unkeyed scheme (``prev_sha256`` only) are reported as legacy: their
  plain chain is checked, and the first keyed line seals them (its ``prev_mac`` is the sha256 of
  all bytes before it), but an edit made before that seal is invisible;
* the truth of what a writer claims (``who``, ``ts``): the MAC proves the line is unchanged since
  a key holder wrote it, not that its content is true.

Appends are serialised with an exclusive ``flock`` (POSIX; on Windows the loader appends without a
lock) and verify the whole chain first: nothing is appended to a broken log.

The implementation is split by responsibility; this module appends events and re-exports the
rest, so ``from mhsds_pipeline.submission import audit`` and ``audit.<name>`` keep working:

* :mod:`~mhsds_pipeline.submission.audit_key`: the HMAC key (sources, fingerprint, MAC);
* :mod:`~mhsds_pipeline.submission.audit_chain`: the scheme over bytes (canonical form, scan
  of the chain, anchors, the head checkpoint);
* :mod:`~mhsds_pipeline.submission.audit_verify`: the whole-log report and the current head;
* here: who acted, the exclusive lock, the key to append with, :func:`append` and :func:`read`.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from mhsds_pipeline.submission.audit_chain import _UNKNOWN as _UNKNOWN
from mhsds_pipeline.submission.audit_chain import (
    AUDIT_LOG_NAME,
    GENESIS,
    HEAD_NAME,
    SCHEME,
    Anchor,
    AuditLogError,
    Problem,
    _head_problems,
    _line_mac,
    _read_head,
    _scan,
    _write_head,
    audit_log_path,
    canonical,
    head_path,
)
from mhsds_pipeline.submission.audit_chain import _check_anchor as _check_anchor
from mhsds_pipeline.submission.audit_chain import _head_mac as _head_mac
from mhsds_pipeline.submission.audit_chain import _problem_order as _problem_order
from mhsds_pipeline.submission.audit_chain import _Scan as _Scan
from mhsds_pipeline.submission.audit_key import (
    KEY_ENV,
    KEY_FILE_ENV,
    KEY_FILE_NAME,
    MIN_KEY_CHARS,
    AuditError,
    AuditKey,
    AuditKeyError,
    default_key_path,
    load_key,
)
from mhsds_pipeline.submission.audit_key import _create_key_file as _create_key_file
from mhsds_pipeline.submission.audit_key import _key_from_text as _key_from_text
from mhsds_pipeline.submission.audit_key import _read_key_file as _read_key_file
from mhsds_pipeline.submission.audit_key import log as log
from mhsds_pipeline.submission.audit_verify import VerifyReport, check_log, head, verify
from mhsds_pipeline.submission.audit_verify import _last_line as _last_line

try:  # POSIX only; the Windows loader runs without locking
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

# The public API. Private helpers imported ``as`` themselves above lived here before the split and
# are re-exported for existing callers and tests.
__all__ = [
    "AUDIT_LOG_NAME",
    "GENESIS",
    "HEAD_NAME",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "KEY_FILE_NAME",
    "MIN_KEY_CHARS",
    "SCHEME",
    "Anchor",
    "AuditError",
    "AuditKey",
    "AuditKeyError",
    "AuditLogError",
    "Problem",
    "VerifyReport",
    "append",
    "audit_log_path",
    "canonical",
    "check_log",
    "default_key_path",
    "head",
    "head_path",
    "key_for_append",
    "load_key",
    "locked",
    "read",
    "verify",
    "who",
]

_AIRFLOW_VARS = {
    "dag_id": "AIRFLOW_CTX_DAG_ID",
    "dag_run_id": "AIRFLOW_CTX_DAG_RUN_ID",
    "task_id": "AIRFLOW_CTX_TASK_ID",
    "try_number": "AIRFLOW_CTX_TRY_NUMBER",
    "logical_date": "AIRFLOW_CTX_LOGICAL_DATE",
    "dag_owner": "AIRFLOW_CTX_DAG_OWNER",
}


# ---------------------------------------------------------------------------------------------
# Key to append with


def key_for_append(log_path: Path, data_dir: Path | None = None) -> AuditKey:
    """The key to append with. A new default key is generated only for a log that has never
    been keyed: a log that has been needs its own key back, not a fresh one."""
    try:
        return load_key(data_dir)
    except AuditKeyError as exc:
        if not exc.missing:
            raise
        if _has_been_keyed(Path(log_path)):
            raise AuditKeyError(
                f"{exc}. The audit log {log_path} is signed with a key that is no longer "
                "configured; a new key would not verify it.",
                missing=True,
            ) from None
    return load_key(data_dir, create=True)


def _has_been_keyed(log_path: Path) -> bool:
    if head_path(log_path).exists():
        return True
    if not log_path.exists():
        return False
    for raw in log_path.read_bytes().splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict) and ("mac" in rec or "scheme" in rec):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Append


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


def append(
    path: Path,
    event: str,
    *,
    run_id: str | None,
    what: dict,
    inputs: dict | None = None,
    outputs: dict | None = None,
    key: AuditKey | None = None,
) -> dict:
    """Verify the log, then append one keyed event (under an exclusive lock) and move the head
    checkpoint. Raises :class:`AuditLogError` (nothing written) if the log is broken."""
    path = Path(path)
    key = key or key_for_append(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.seek(0)
            s = _scan(fh.read(), key)
            problems = s.problems + _head_problems(path, s, key)
            if problems:
                raise AuditLogError(path, problems)
            if _read_head(path) is None:
                # The checkpoint exists before the first keyed line: a crash between the line
                # and the checkpoint then leaves it one behind (fine), never missing.
                _write_head(path, key, 0, GENESIS)
            record = {
                "seq": s.last_seq + 1,
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "event": event,
                "who": who(),
                "run_id": run_id,
                "what": what,
                "inputs": inputs or {},
                "outputs": outputs or {},
                "scheme": SCHEME,
                "key_id": key.key_id,
                "prev_mac": s.next_prev,
            }
            record = json.loads(canonical(record))  # exactly what verify will parse back
            record["mac"] = _line_mac(key, record)
            fh.seek(0, os.SEEK_END)
            fh.write(canonical(record) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
            _write_head(path, key, record["seq"], record["mac"])
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return record


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
