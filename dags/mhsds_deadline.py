"""
### MHSDS submission deadline check

Every morning, checks that the month due for submission has been packaged
(`output/<YYYY-MM>/submission/submission_manifest.json`) and, from
`MHSDS_DEADLINE_DAYS_BEFORE` days (default 5) before NHS England's cut-off, sends a warning
through the configured alert sinks (log, email, webhook; see docs/production.md) for each month
that is not. On and after the cut-off the alert is critical.

Cut-offs come from the published schedule in `MHSDS_SUBMISSION_DEADLINES` (JSON file,
`{"2026-10": "2026-11-19"}`), else day `MHSDS_SUBMISSION_CUTOFF_DAY` (default 20) of the
month after the period. The task succeeds either way: the alert is the signal.

Owner: data engineering. Logic: `mhsds_pipeline.alerts.run_deadline_check`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="mhsds_deadline",
    description="Daily: warn when the month's MHSDS submission is not packaged before the cut-off",
    schedule="0 7 * * *",
    start_date=pendulum.datetime(2024, 4, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["mhsds", "monitoring"],
    doc_md=__doc__,
)
def mhsds_deadline():
    @task
    def check_submission_deadline(logical_date=None) -> list[str]:
        from mhsds_pipeline.alerts import run_deadline_check

        # the run's own day (a re-run of last Tuesday checks as of last Tuesday); None: today
        today = pendulum.instance(logical_date).in_timezone("Europe/London").date() if logical_date else None
        return run_deadline_check(today=today)

    check_submission_deadline()


mhsds_deadline()
