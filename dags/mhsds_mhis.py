"""
### MHIS investment tracking and LTP access metrics (finance)

Runs when a month of MHSDS is published (Asset `mhsds_published`, emitted by the `publish`
task of `mhsds_monthly` with the event extra `{"period": "YYYY-MM"}`), or manually with
`{"period": "2026-10"}`.

**Steps**: `resolve_periods` (from the triggering asset events, else the `period` param, else
the month before the logical date) -> `load_finance` (the ledger extract into the warehouse
schema `raw_finance`) -> `build_finance` (a separate `dbt build --select tag:finance`; critical
tests block) -> `publish_mhis` (MHIS target, compliance and run-rate forecast; LTP metrics over
the rolling 12 published months; activity and unit costs by MHIS category; Parquet, Excel and
HTML into `output/<YYYY-MM>/mhis/` as a new immutable version of the month). The finance
marts cover every year of the extract, so they are loaded and built once per run (for the latest
period); `publish_mhis` is mapped over the periods, one at a time.

Owner: data engineering, for finance (MHIS). Runbook: docs/mhis.md.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from mhsds_pipeline.alerts import default_args
from mhsds_pipeline.assets import MHSDS_PUBLISHED, WAREHOUSE_POOL
from mhsds_pipeline.failures import run_step
from mhsds_pipeline.summaries import ONE_XCOM, FinanceBuildSummary, MhisSummary

DEFAULT_ARGS = default_args()  # retries with backoff, alert callbacks
# Only failures a later try can cure are retried (ledger unreachable, warehouse busy).
# The finance tasks open the warehouse: they share the monthly DAG's one-slot pool, so an
# asset-triggered run never collides with a queued monthly run.
WAREHOUSE = {"pool": WAREHOUSE_POOL, "max_active_tis_per_dag": 1}


@dag(
    dag_id="mhsds_mhis",
    description="MHIS spend vs target and LTP access metrics for each published MHSDS month",
    schedule=[MHSDS_PUBLISHED],
    start_date=pendulum.datetime(2024, 4, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "period": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="Reporting period YYYY-MM when triggered by hand (asset events take precedence)",
        )
    },
    tags=["mhsds", "finance", "mhis"],
    doc_md=__doc__,
)
def mhsds_mhis():
    @task
    def resolve_periods(params=None, triggering_asset_events=None, logical_date=None) -> list[str]:
        from mhsds_pipeline.finance import periods_from_asset_events

        periods = run_step(
            periods_from_asset_events, triggering_asset_events, (params or {}).get("period"), logical_date
        )
        if not periods:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("only months that have not ended were published: nothing for finance")
        return periods

    # The finance marts hold every year of the extract (not one period), so they are loaded and
    # built once per run, for the latest period; then each period is published.
    @task(**WAREHOUSE)
    def load_finance(periods: list[str], run_id=None) -> str:
        from mhsds_pipeline.finance import load_finance as _load

        latest = max(periods)
        run_step(_load, latest, warehouse_holder=run_id, shared_schema=False)
        return latest

    @task(**WAREHOUSE, **ONE_XCOM)
    def build_finance(latest: str, run_id=None) -> FinanceBuildSummary:
        from mhsds_pipeline import summaries
        from mhsds_pipeline.finance import build_finance as _build

        return summaries.finance_build(run_step(_build, latest, warehouse_holder=run_id, shared_schema=False))

    @task(**WAREHOUSE, **ONE_XCOM)
    def publish_mhis(period: str, run_id=None) -> MhisSummary:
        from mhsds_pipeline import summaries
        from mhsds_pipeline.finance import publish_mhis_outputs

        return summaries.mhis(
            run_step(publish_mhis_outputs, period, run_id, warehouse_holder=run_id, shared_schema=False)
        )

    periods = resolve_periods()
    built = build_finance(load_finance(periods))
    built >> publish_mhis.expand(period=periods)


mhsds_mhis()
