"""Verifying the audit log as a whole: the chain, the head checkpoint and any anchors from
package manifests, summed up in a :class:`VerifyReport` (what ``mhsds audit verify`` and
``package.verify_submissions`` show), and reading the current head to anchor in a new manifest.

Kept apart from appending: verification reads, it never writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mhsds_pipeline.submission.audit_chain import (
    GENESIS,
    Anchor,
    Problem,
    _check_anchor,
    _head_problems,
    _problem_order,
    _scan,
)
from mhsds_pipeline.submission.audit_key import AuditKey, load_key

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
