"""The audit log's integrity scheme (``hmac-sha256/1``) over bytes: the canonical line form,
line and head MACs, the scan that checks every line of the chain (legacy plain chain, then the
keyed MAC chain), anchors, and the ``audit_head.json`` checkpoint.

This is the part of the audit log that decides whether the bytes on disk can be trusted; it
neither appends events nor reports to a user (:mod:`~mhsds_pipeline.submission.audit` and
:mod:`~mhsds_pipeline.submission.audit_verify` do). See :mod:`mhsds_pipeline.submission.audit`
for the threat model.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mhsds_pipeline.submission.audit_key import AuditError, AuditKey

AUDIT_LOG_NAME = "audit_log.jsonl"
HEAD_NAME = "audit_head.json"
SCHEME = "hmac-sha256/1"
GENESIS = "0" * 64


def audit_log_path(settings) -> Path:
    return settings.output_dir / "submissions" / AUDIT_LOG_NAME


def head_path(log_path: Path) -> Path:
    return Path(log_path).with_name(HEAD_NAME)


# ---------------------------------------------------------------------------------------------
# Problems


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
