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
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import stat
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

try:  # POSIX only; the Windows loader runs without locking
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

AUDIT_LOG_NAME = "audit_log.jsonl"
HEAD_NAME = "audit_head.json"
SCHEME = "hmac-sha256/1"
GENESIS = "0" * 64
KEY_ENV = "MHSDS_AUDIT_KEY"
KEY_FILE_ENV = "MHSDS_AUDIT_KEY_FILE"
KEY_FILE_NAME = "audit_hmac.key"
MIN_KEY_CHARS = 32
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


def head_path(log_path: Path) -> Path:
    return Path(log_path).with_name(HEAD_NAME)


# ---------------------------------------------------------------------------------------------
# Errors


class AuditError(RuntimeError):
    """The audit log cannot be trusted or written; nothing was appended."""


class AuditKeyError(AuditError):
    """No usable key. ``missing`` is True when none is configured at all."""

    def __init__(self, message: str, *, missing: bool = False):
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the log or its packages. ``repairable`` problems (a package without
    its entry, ``current`` behind the latest package) are what a crash leaves; packaging the
    period repairs them. Every other problem means the log was tampered with or damaged."""

    kind: str
    message: str
    seq: int | None = None
    line: int | None = None
    repairable: bool = False

    def __str__(self) -> str:
        where = []
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{', '.join(where) or 'log'}: [{self.kind}] {self.message}"


class AuditLogError(AuditError):
    """The log failed verification; ``problems`` says where and what."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path = Path(path)
        self.problems = sorted(problems, key=_problem_order)
        first = self.problems[0] if self.problems else "unknown problem"
        lines = "\n".join(f"  - {p}" for p in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(
            f"MHSDS submission audit log {self.path} failed verification at {first}. "
            f"Nothing was appended or packaged. Restore the log and {HEAD_NAME} from backup, or "
            f"investigate with `mhsds audit verify` (docs/submission.md, 'Audit log').\n{lines}{more}"
        )


def _problem_order(p: Problem) -> tuple:
    inf = float("inf")
    return (p.seq if p.seq is not None else inf, p.line if p.line is not None else inf)


# ---------------------------------------------------------------------------------------------
# Key


@dataclass(frozen=True)
class AuditKey:
    """The HMAC key and where it came from. ``repr`` and ``str`` never show the secret."""

    secret: bytes = field(repr=False)
    source: str

    @property
    def key_id(self) -> str:
        """A fingerprint that names the key in each line, so a wrong key is told from an edit."""
        return hashlib.sha256(b"mhsds-audit-key-id\0" + self.secret).hexdigest()[:16]

    def mac(self, domain: bytes, body: bytes) -> str:
        return hmac.new(self.secret, domain + b"\0" + body, hashlib.sha256).hexdigest()


def default_key_path(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from mhsds_pipeline.config import load_settings

        data_dir = load_settings().data_dir
    return Path(data_dir) / "secrets" / KEY_FILE_NAME


def _key_from_text(text: str, source: str) -> AuditKey:
    text = text.strip()
    if len(text) < MIN_KEY_CHARS:
        raise AuditKeyError(
            f"the audit key from {source} is shorter than {MIN_KEY_CHARS} characters; "
            "generate one with `python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return AuditKey(text.encode("utf-8"), source)


def _read_key_file(path: Path, source: str) -> AuditKey:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key file {path}: {exc.strerror}") from None
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("audit key file %s is readable by group or others; chmod 600 it", path)
    return _key_from_text(text, source)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.warning("generated a new audit log key at %s (embedded set-up; keep it, never commit it)", path)


def load_key(data_dir: Path | None = None, *, create: bool = False) -> AuditKey:
    """The audit key: ``MHSDS_AUDIT_KEY``, else the file ``MHSDS_AUDIT_KEY_FILE`` names, else
    ``<data_dir>/secrets/audit_hmac.key`` (generated when ``create`` and absent).

    Raises :class:`AuditKeyError` (``missing=True`` when nothing is configured)."""
    value = os.environ.get(KEY_ENV)
    if value:
        return _key_from_text(value, f"environment variable {KEY_ENV}")
    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return _read_key_file(Path(named), f"{KEY_FILE_ENV} file {named}")
    path = default_key_path(data_dir)
    if not path.exists() and create:
        _create_key_file(path)
    if path.exists():
        return _read_key_file(path, f"key file {path}")
    raise AuditKeyError(
        f"no audit log key: set {KEY_ENV} or {KEY_FILE_ENV} (production: from the secrets store), "
        f"or restore {path} (embedded set-up)",
        missing=True,
    )


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
# Lines


def canonical(obj) -> bytes:
    """The one byte form a record is written and MACed in."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def _line_mac(key: AuditKey, record: dict) -> str:
    return key.mac(b"line", canonical({k: v for k, v in record.items() if k != "mac"}))


def _head_mac(key: AuditKey, doc: dict) -> str:
    return key.mac(b"head", canonical({k: v for k, v in doc.items() if k != "head_mac"}))


@dataclass(frozen=True)
class Anchor:
    """A head recorded outside the log: the log must still hold line ``seq`` with ``mac``."""

    label: str
    seq: int
    mac: str
    key_id: str | None = None

    def as_dict(self) -> dict:
        return {
            "log": AUDIT_LOG_NAME,
            "scheme": SCHEME,
            "seq": self.seq,
            "mac": self.mac,
            "key_id": self.key_id,
        }


@dataclass
class _Scan:
    lines: int = 0
    legacy: int = 0
    keyed: int = 0
    last_seq: int = 0
    head_mac: str = GENESIS  # mac of the last keyed line
    head_seq: int = 0
    macs: dict[int, str] = field(default_factory=dict)
    entries: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    next_prev: str = GENESIS  # what a new keyed line's prev_mac must be


_UNKNOWN = object()


def _scan(data: bytes, key: AuditKey) -> _Scan:
    """Check every line of the log's bytes: legacy plain chain, then the keyed MAC chain."""
    s = _Scan()
    pieces = data.split(b"\n")
    tail = pieces.pop()  # b"" when the file ends with a newline, as every append leaves it
    if tail:
        pieces.append(tail)
    prev_seq: object = 0
    prev_raw: bytes | None = None  # previous legacy line (for prev_sha256)
    prev_mac: object = None  # None until the first keyed line
    offset = 0
    for n, raw in enumerate(pieces, start=1):
        start, offset = offset, offset + len(raw) + 1
        s.lines = n

        def bad(kind: str, message: str, seq=None, *, n=n) -> None:
            s.problems.append(Problem(kind, message, seq=seq, line=n))

        if n == len(pieces) and tail:
            bad("torn", "the last line is incomplete (no newline): a torn write or a cut-off tail")
        if not raw.strip():
            bad("blank", "blank line where a record should be (edited)")
            prev_seq, prev_mac = _UNKNOWN, (_UNKNOWN if prev_mac is not None else None)
            continue
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError
        except ValueError:
            bad("json", "not a JSON record (edited or damaged)")
            prev_seq, prev_mac = _UNKNOWN, (_UNKNOWN if prev_mac is not None else None)
            prev_raw = raw
            continue
        s.entries.append(rec)
        seq = rec.get("seq")
        if prev_seq is not _UNKNOWN and seq != prev_seq + 1:
            bad("seq", f"seq {seq} follows seq {prev_seq}: a line was deleted, inserted or moved", seq)
        keyed = "mac" in rec or "scheme" in rec
        if not keyed:
            s.legacy += 1
            if prev_mac is not None:
                bad("downgrade", "unkeyed line after keyed lines (inserted, or a keyed line stripped)", seq)
            else:
                expected = hashlib.sha256(prev_raw).hexdigest() if prev_raw is not None else GENESIS
                if rec.get("prev_sha256") != expected:
                    bad("legacy_chain", "legacy prev_sha256 does not match the line before it", seq)
            prev_raw, prev_seq = raw, seq if isinstance(seq, int) else _UNKNOWN
            continue

        s.keyed += 1
        expected_prev = prev_mac
        if prev_mac is None:  # the first keyed line seals everything before it
            expected_prev = hashlib.sha256(data[:start]).hexdigest() if start else GENESIS
        if rec.get("scheme") != SCHEME:
            bad("scheme", f"unknown integrity scheme {str(rec.get('scheme'))[:40]!r}", seq)
        elif rec.get("key_id") != key.key_id:
            bad(
                "key",
                f"signed with key id {str(rec.get('key_id'))[:16]}, but the configured key is "
                f"{key.key_id} ({key.source}): the wrong key, or the line re-signed with another",
                seq,
            )
        elif not hmac.compare_digest(str(rec.get("mac")), _line_mac(key, rec)):
            bad("mac", "MAC does not match: the line was edited or re-chained after it was written", seq)
        elif raw != canonical(rec):
            bad("edited", "the line's bytes differ from the form that was signed (edited)", seq)
        if expected_prev is not _UNKNOWN and rec.get("prev_mac") != expected_prev:
            what = "the line before it" if prev_mac is not None else "the legacy lines before it"
            bad("chain", f"prev_mac does not match {what}: deleted, inserted, replaced or edited", seq)
        mac = str(rec.get("mac"))
        if isinstance(seq, int):
            s.macs[seq] = mac
            s.head_seq = seq
        s.head_mac = mac
        prev_mac, prev_seq = mac, seq if isinstance(seq, int) else _UNKNOWN
    seqs = [e.get("seq") for e in s.entries if isinstance(e.get("seq"), int)]
    s.last_seq = max(seqs, default=0)
    s.next_prev = s.head_mac if s.keyed else (hashlib.sha256(data).hexdigest() if data else GENESIS)
    return s


def _check_anchor(s: _Scan, anchor: Anchor) -> Problem | None:
    if anchor.seq <= 0:
        return None
    if anchor.seq not in s.macs:
        if anchor.seq > s.last_seq:
            return Problem(
                "truncated",
                f"{anchor.label} records seq {anchor.seq}, but the log ends at seq {s.last_seq}: "
                "lines were cut off the end",
                seq=s.last_seq + 1,
            )
        return Problem(
            "anchor", f"{anchor.label} records keyed seq {anchor.seq}; the log has no such line", anchor.seq
        )
    if not hmac.compare_digest(s.macs[anchor.seq], anchor.mac):
        return Problem(
            "anchor",
            f"seq {anchor.seq} is not the line {anchor.label} records: the log was rewritten or re-chained",
            seq=anchor.seq,
        )
    return None


def _read_head(log_path: Path) -> dict | None:
    try:
        doc = json.loads(head_path(log_path).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _head_problems(log_path: Path, s: _Scan, key: AuditKey) -> list[Problem]:
    doc = _read_head(log_path)
    if doc is None:
        if s.keyed:
            return [Problem("head", f"{HEAD_NAME} is missing while the log has keyed lines (deleted?)")]
        return []
    if doc.get("key_id") != key.key_id:
        return [
            Problem(
                "key", f"{HEAD_NAME} is signed with key id {str(doc.get('key_id'))[:16]}, not {key.key_id}"
            )
        ]
    if not hmac.compare_digest(str(doc.get("head_mac")), _head_mac(key, doc)):
        return [Problem("head", f"{HEAD_NAME} does not verify (edited or damaged)")]
    problem = _check_anchor(s, Anchor(HEAD_NAME, int(doc.get("seq") or 0), str(doc.get("mac"))))
    return [problem] if problem else []


def _write_head(log_path: Path, key: AuditKey, seq: int, mac: str) -> None:
    doc = {
        "log": AUDIT_LOG_NAME,
        "scheme": SCHEME,
        "seq": seq,
        "mac": mac,
        "key_id": key.key_id,
        "updated_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    doc["head_mac"] = _head_mac(key, doc)
    target = head_path(log_path)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    with tmp.open("wb") as fh:
        fh.write(canonical(doc) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


# ---------------------------------------------------------------------------------------------
# Verify


@dataclass
class VerifyReport:
    """What :func:`check_log` (and ``package.verify_submissions``) found. No patient data."""

    path: Path
    key_id: str
    key_source: str
    lines: int = 0
    legacy: int = 0
    keyed: int = 0
    head_seq: int = 0
    head_mac: str = GENESIS
    anchors: int = 0
    packages: int = 0
    problems: list[Problem] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def broken(self) -> list[Problem]:
        """Tampering or damage: packaging refuses while any of these stand."""
        return [p for p in self.problems if not p.repairable]

    def add(self, problems: Iterable[Problem]) -> None:
        """Add findings from outside the log (the packages), keeping the first-bad-seq order."""
        self.problems = sorted([*self.problems, *problems], key=_problem_order)

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=_problem_order) if self.problems else None

    def summary(self) -> str:
        """One line, safe to print and log."""
        legacy = f", {self.legacy} legacy unkeyed" if self.legacy else ""
        text = (
            f"{self.lines} lines ({self.keyed} keyed{legacy}), head seq {self.head_seq} "
            f"mac {self.head_mac[:12]}, {self.anchors} anchor(s) and {self.packages} package(s) checked, "
            f"key {self.key_id} from {self.key_source}"
        )
        if self.ok:
            return f"audit log intact: {text}"
        state = "broken" if self.broken else "needs repair"
        return f"audit log {state} at {self.first} ({len(self.problems)} problem(s)); {text}"


def check_log(path: Path, key: AuditKey, anchors: Iterable[Anchor] = ()) -> VerifyReport:
    """Verify the whole chain, the head checkpoint and every given anchor."""
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    s = _scan(data, key)
    problems = s.problems + _head_problems(path, s, key)
    anchors = list(anchors)
    problems += [p for a in anchors if (p := _check_anchor(s, a))]
    return VerifyReport(
        path=path,
        key_id=key.key_id,
        key_source=key.source,
        lines=s.lines,
        legacy=s.legacy,
        keyed=s.keyed,
        head_seq=s.head_seq,
        head_mac=s.head_mac,
        anchors=len(anchors),
        problems=sorted(problems, key=_problem_order),
        entries=s.entries,
    )


def verify(path: Path, key: AuditKey | None = None) -> list[str]:
    """Problems with the log's chain and head checkpoint (empty: intact). Package anchors are
    checked by ``package.verify_submissions`` / ``mhsds audit verify``."""
    return [str(p) for p in check_log(path, key or load_key()).problems]


def head(path: Path) -> Anchor:
    """The log's current head (last keyed line), to anchor in a package manifest. Call it after
    verifying: it reads the head, it does not check it."""
    path = Path(path)
    if path.exists():
        with path.open("rb") as fh:
            last = _last_line(fh)
        rec = json.loads(last) if last else None
        if isinstance(rec, dict) and "mac" in rec:
            return Anchor("head", int(rec["seq"]), str(rec["mac"]), rec.get("key_id"))
    return Anchor("head", 0, GENESIS)


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
