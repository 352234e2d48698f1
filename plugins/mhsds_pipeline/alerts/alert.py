"""The :class:`Alert` record that every producer (failure and retry callbacks, the deadline
check) builds and every sink sends: one shape and one plain-text rendering, so the sinks do not
need to know where an alert came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Alert:
    """One thing someone should know about, in our severity vocabulary."""

    event: str  # task_failed | task_retry | dag_failed | deadline
    severity: str  # critical | warning | info
    summary: str
    details: str = ""
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    period: str | None = None
    rule: str | None = None
    error_class: str | None = None
    try_number: int | None = None
    log_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """Plain text body: one line per fact, the error last."""
        facts = [
            ("Reporting period", self.period),
            ("DAG", self.dag_id),
            ("Task", self.task_id),
            ("Run", self.run_id),
            ("Try", self.try_number),
            ("Error", self.error_class),
            ("Failing rule", self.rule),
            ("Log", self.log_url),
        ]
        lines = [f"[{self.severity.upper()}] {self.summary}"]
        lines += [f"{name}: {value}" for name, value in facts if value not in (None, "")]
        if self.details:
            lines += ["", self.details]
        return "\n".join(lines)
