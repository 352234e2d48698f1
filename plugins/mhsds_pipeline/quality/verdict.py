"""The quality gate's verdict: one typed hand-over, written and read here only.

The gate writes it as ``dq/gate.json`` beside ``dq_results.parquet``; publish, packaging,
the submission checks and alerts read it back through :meth:`GateVerdict.read` (or from the
:class:`QualityGateError` that carries it) instead of re-typing JSON keys. Table names are IDB
names (``MHS101Referral``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mhsds_pipeline.quality.results import CheckResult

#: Where the verdict sits in a quality work directory and in a published version.
GATE_FILE = Path("dq") / "gate.json"


class VerdictError(ValueError):
    """``gate.json`` is missing a field or is not the gate's verdict."""


@dataclass(frozen=True)
class BlockingCheck:
    """A check whose failure stops publication (severity ``file rejected``, or it could not run)."""

    check_id: str
    source: str
    table: str | None
    count: int | None
    status: str
    description: str

    @classmethod
    def of(cls, check: CheckResult) -> BlockingCheck:
        return cls(
            check.check_id,
            check.source,
            check.table_name,
            check.numerator,
            check.status,
            check.description or "",
        )

    def describe(self) -> str:
        return f"table {self.table or '-'} rule {self.check_id} ({self.status}, count {self.count}): {self.description}"


@dataclass(frozen=True)
class GateVerdict:
    period: str
    run_id: str
    status: str  # passed / failed
    rules_catalogue_version: str
    checks: int
    warnings: int  # checks of severity "severity 1 warning" or "warning" that failed
    blocking: tuple[BlockingCheck, ...] = ()
    rejected_rows: dict[str, int] = field(default_factory=dict)  # IDB table -> distinct rows quarantined
    submitted_rows: dict[str, int] = field(default_factory=dict)  # IDB table -> rows submitted
    volume_anomalies: dict[str, float | None] = field(default_factory=dict)
    reconciliation: dict[str, Any] | None = None
    dqmi_dataset_score: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed_rules(self) -> list[str]:
        """The ids of the blocking checks, in order (alerts name them)."""
        return list(dict.fromkeys(b.check_id for b in self.blocking))

    def summary(self) -> dict[str, Any]:
        """What the gate task returns (small: Airflow stores it as one XCom)."""
        return {
            "period": self.period,
            "status": self.status,
            "warnings": self.warnings,
            "checks": self.checks,
            "rejected_rows": dict(self.rejected_rows),
            "seconds": dict(self.seconds),
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    def write(self, dq_dir: Path) -> Path:
        path = Path(dq_dir) / GATE_FILE.name
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GateVerdict:
        try:
            blocking = tuple(BlockingCheck(**b) for b in doc.get("blocking") or ())
            return cls(
                period=str(doc["period"]),
                run_id=str(doc["run_id"]),
                status=str(doc["status"]),
                rules_catalogue_version=str(doc["rules_catalogue_version"]),
                checks=int(doc["checks"]),
                warnings=int(doc["warnings"]),
                blocking=blocking,
                rejected_rows={str(k): int(v) for k, v in (doc.get("rejected_rows") or {}).items()},
                submitted_rows={str(k): int(v) for k, v in (doc.get("submitted_rows") or {}).items()},
                volume_anomalies=dict(doc.get("volume_anomalies") or {}),
                reconciliation=doc.get("reconciliation"),
                dqmi_dataset_score=doc.get("dqmi_dataset_score"),
                seconds=dict(doc.get("seconds") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VerdictError(f"not a quality gate verdict ({type(exc).__name__}: {exc})") from exc

    @classmethod
    def read(cls, path: Path) -> GateVerdict:
        """The verdict at ``path`` (``gate.json``); :class:`VerdictError` if it is not one."""
        try:
            doc = json.loads(Path(path).read_text())
        except ValueError as exc:
            raise VerdictError(f"{path} is not JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise VerdictError(f"{path} is not a quality gate verdict")
        return cls.from_dict(doc)


class QualityGateError(RuntimeError):
    """A blocking data-quality failure: the period is not promoted. Carries the verdict."""

    def __init__(self, message: str, verdict: GateVerdict | None = None, rules: tuple[str, ...] = ()):
        super().__init__(message)
        self.verdict = verdict
        self._rules = list(rules)

    @property
    def failed_rules(self) -> list[str]:
        """The blocking checks' ids (alerts name them from here, not from the message)."""
        return self.verdict.failed_rules if self.verdict else self._rules
