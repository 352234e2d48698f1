"""The submission-deadline check: the question the data engineering lead asks in the last week
before NHS England's cut-off, "is this month's submission packaged yet?", answered from the
package manifests on disk and alerted through the sinks by the daily ``mhsds_deadline`` DAG.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from mhsds_pipeline.alerts.alert import Alert
from mhsds_pipeline.alerts.sinks import Sink, notify, sinks_from_env
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.settings import EnvSettings, read_settings

# The name the alerts module always logged under (before it became a package).
log = logging.getLogger("mhsds_pipeline.alerts")

#: Days before the cut-off from which an unpackaged submission is reported.
DEFAULT_DAYS_BEFORE: int = EnvSettings.model_fields["deadline_days_before"].default
#: Day of the month after the reporting period used when no published deadline is configured.
#: NHS England publishes the MHSDS submission schedule each year: load it with
#: MHSDS_SUBMISSION_DEADLINES (a JSON file ``{"2026-10": "2026-11-19", ...}``).
DEFAULT_CUTOFF_DAY: int = EnvSettings.model_fields["submission_cutoff_day"].default
SUBMISSION_MANIFEST = Path("submission") / "submission_manifest.json"


# --------------------------------------------------------------------------------------------
# Submission deadline


def load_deadlines(env: Mapping[str, str] | None = None) -> dict[str, date]:
    """Published cut-offs per period from the JSON file named by MHSDS_SUBMISSION_DEADLINES."""
    path = read_settings(env).submission_deadlines
    if path is None:
        return {}
    raw = json.loads(path.read_text())
    return {str(ReportingPeriod.parse(k)): date.fromisoformat(v) for k, v in raw.items()}


def submission_cutoff(
    period: ReportingPeriod, deadlines: Mapping[str, date] | None = None, cutoff_day: int | None = None
) -> date:
    """The day the period's submission must be in: published date, else day N of the next month."""
    if deadlines and str(period) in deadlines:
        return deadlines[str(period)]
    day = cutoff_day or read_settings().submission_cutoff_day
    nxt = period.shift(1)
    return date(nxt.year, nxt.month, min(day, nxt.end.day))


def submission_manifest_path(settings: Any, period: ReportingPeriod) -> Path:
    return Path(settings.output_dir) / str(period) / SUBMISSION_MANIFEST


def _packaged(manifest: Path, period: ReportingPeriod) -> str | None:
    """None when the package is there and readable, else why not."""
    if not manifest.exists():
        return "not packaged"
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        return f"package manifest unreadable ({type(exc).__name__})"
    stated = data.get("reporting_period") if isinstance(data, dict) else None
    if stated and str(stated) != str(period):
        return f"package manifest is for {stated}"
    return None


@dataclass(frozen=True)
class DeadlineFinding:
    period: str
    cutoff: date
    days_left: int  # negative once the cut-off has passed
    problem: str
    manifest: Path

    @property
    def severity(self) -> str:
        return "critical" if self.days_left <= 0 else "warning"

    def message(self) -> str:
        days = self.days_left
        if days > 0:
            when = f"the cut-off is {self.cutoff.isoformat()}, in {days} day{'s' if days != 1 else ''}"
        elif days == 0:
            when = f"the cut-off is today ({self.cutoff.isoformat()})"
        else:
            when = f"the cut-off {self.cutoff.isoformat()} passed {-days} day{'s' if days != -1 else ''} ago"
        return (
            f"MHSDS {self.period}: submission {self.problem}; {when}. Expected {self.manifest}. "
            f"Run or fix the mhsds_monthly DAG for {self.period}, then package the submission."
        )


def deadline_findings(
    settings: Any,
    today: date | None = None,
    days_before: int = DEFAULT_DAYS_BEFORE,
    deadlines: Mapping[str, date] | None = None,
    cutoff_day: int | None = None,
) -> list[DeadlineFinding]:
    """Submissions not packaged ``days_before`` days (or less) before their cut-off.

    Looks at the latest complete month (the one due now) and at the month before it while
    that one's cut-off has not passed (a published schedule may run past month end).
    """
    today = today or date.today()
    deadlines = load_deadlines() if deadlines is None else deadlines
    due = ReportingPeriod.latest_complete(today)
    findings: list[DeadlineFinding] = []
    for period in (due.shift(-1), due):
        cutoff = submission_cutoff(period, deadlines, cutoff_day)
        if period != due and today > cutoff:
            continue  # an earlier month's window: it was reported while it was open
        if today < cutoff - timedelta(days=days_before):
            continue
        manifest = submission_manifest_path(settings, period)
        problem = _packaged(manifest, period)
        if problem is not None:
            findings.append(DeadlineFinding(str(period), cutoff, (cutoff - today).days, problem, manifest))
    return findings


def deadline_check(
    settings: Any,
    today: date | None = None,
    days_before: int = DEFAULT_DAYS_BEFORE,
    deadlines: Mapping[str, date] | None = None,
    cutoff_day: int | None = None,
) -> list[str]:
    """One actionable warning per submission not packaged ``days_before`` days before its
    cut-off (``output/<YYYY-MM>/submission/submission_manifest.json``); empty when all is well."""
    return [f.message() for f in deadline_findings(settings, today, days_before, deadlines, cutoff_day)]


def run_deadline_check(
    today: date | None = None,
    days_before: int | None = None,
    sinks: Iterable[Sink] | None = None,
    settings: Any = None,
) -> list[str]:
    """What the daily deadline DAG runs: check, then alert each finding through the sinks."""
    from mhsds_pipeline.config import load_settings

    settings = settings or load_settings()
    if days_before is None:
        days_before = read_settings().deadline_days_before
    today = today or date.today()
    findings = deadline_findings(settings, today=today, days_before=days_before)
    sinks = list(sinks_from_env() if sinks is None else sinks)
    for finding in findings:
        notify(
            Alert(
                event="deadline",
                severity=finding.severity,
                summary=finding.message().split(". Expected", 1)[0],
                details=finding.message(),
                dag_id="mhsds_deadline",
                period=finding.period,
            ),
            sinks,
        )
    if not findings:
        log.info("Submission deadline check on %s: nothing outstanding", today.isoformat())
    return [f.message() for f in findings]
