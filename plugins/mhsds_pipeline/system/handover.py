"""The hand-over from a provider's step to the month's combine step (:mod:`.flow`, :mod:`.outputs`).

:class:`ProviderOutcome` is written and read here only, as ``<work>/<YYYY-MM>/<ODS>/outcome.json``
beside the provider's result files (``dq_results.parquet``, ``dqmi/``, ``sdcs/``). It holds exact
counts for the combine step, never an identifier; nothing in the work folder is published as it is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

OUTCOME_FILE = "outcome.json"
DQ_PART = "dq_results.parquet"


def period_work_dir(work_dir: Path, period: str) -> Path:
    return Path(work_dir) / str(period)


def provider_work_dir(work_dir: Path, period: str, org: str) -> Path:
    return period_work_dir(work_dir, period) / org


@dataclass(frozen=True)
class ProviderOutcome:
    """What one provider's step hands to :func:`combine` (read and written here only)."""

    org_id_provider: str
    period: str
    package_dir: str
    warehouse_file: str
    rows: dict[str, int]
    rows_rejected: int
    rows_unreadable: int
    rules_failed: int
    dqmi_dataset_score: float | None
    dqmi_score_before_rejections: float | None
    ltp_exact: dict[str, float | None] = field(default_factory=dict)
    #: Rules of severity "file rejected" that failed: SDCS would reject the whole submission, so
    #: the provider is left out of the ICB figures (its own rows say so).
    file_rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def submission_accepted(self) -> bool:
        return not self.file_rejected

    @staticmethod
    def path(work_dir: Path, period: str, org: str) -> Path:
        return provider_work_dir(work_dir, period, org) / OUTCOME_FILE

    def write(self, work_dir: Path) -> Path:
        path = self.path(work_dir, self.period, self.org_id_provider)
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        return path

    @classmethod
    def read(cls, work_dir: Path, period: str, org: str) -> ProviderOutcome:
        path = cls.path(work_dir, period, org)
        if not path.exists():
            raise FileNotFoundError(
                f"System {period}: no validated package of provider {org} in {path.parent}; "
                "run its load_and_validate_provider step first"
            )
        return cls(**json.loads(path.read_text()))

    def summary(self) -> dict:
        """Small and identifier-free: what the Airflow task keeps in XCom."""
        return {
            "org_id_provider": self.org_id_provider,
            "period": self.period,
            "rows": sum(self.rows.values()),
            "rows_rejected": self.rows_rejected,
            "rows_unreadable": self.rows_unreadable,
            "rules_failed": self.rules_failed,
            "dqmi_dataset_score": self.dqmi_dataset_score,
            "file_rejected": len(self.file_rejected),
            "seconds": self.seconds,
        }
