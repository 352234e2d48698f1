"""
### MHSDS system view: every provider's submission for one month

What an ICB or NHS England's data-quality team runs on the providers' submission files (issue #15).
The inbox holds `providers.csv` (ODS code -> ICB, region) and one IDB CSV package per provider and
month, `<inbox>/<YYYY-MM>/<ODS>/MHS000Header.csv ...`.

**Steps**: `list_packages` of the period in the inbox -> `load_and_validate_provider`, one mapped
task per package: the package into its own DuckDB file, the MHSDS rules, DQMI, the SDCS-shaped
reports and NHS England's LTP measures (dbt builds the national derived tables in that file) ->
`combine`: disclosure control, the ICB figures, every file staged and promoted atomically to
`<output>/<YYYY-MM>` with `manifest.json`. A refused package fails its task, `combine` does not
run and the period's last good outputs stay as they are; re-running a period gives the same bytes.

**Why no pool**: each provider has its own DuckDB file (DuckDB allows one writer per file), so the
mapped tasks run side by side (at most 4 at once per run) without the trust's one-slot
`mhsds_warehouse` pool.

**Period**: trigger with `{"period": "2026-10"}`; without it the run processes the month before
its logical date. **Folders**: `MHSDS_SYSTEM_INBOX`, `MHSDS_SYSTEM_OUTPUT`, `MHSDS_SYSTEM_WORK`.

Owner: data engineering. Docs: docs/system_view.md.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from mhsds_pipeline.alerts import default_args
from mhsds_pipeline.failures import run_step
from mhsds_pipeline.summaries import ONE_XCOM

PROVIDERS_AT_ONCE = 4


@dag(
    dag_id="mhsds_system",
    description="MHSDS system view: providers' submission files validated, DQMI, LTP per provider and ICB",
    schedule="0 7 20 * *",
    start_date=pendulum.datetime(2024, 4, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    params={
        "period": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="Reporting period YYYY-MM; empty = the month before the logical date",
        ),
    },
    tags=["mhsds", "system"],
    doc_md=__doc__,
)
def mhsds_system():
    @task
    def resolve_period(params=None, logical_date=None) -> str:
        from mhsds_pipeline.pipeline import resolve_period as _resolve

        return run_step(_resolve, (params or {}).get("period"), logical_date)

    @task
    def list_packages(period: str) -> list[str]:
        """The period's package folders in the inbox: one mapped task each."""
        from mhsds_pipeline.system import flow

        inbox, _, _ = flow.system_dirs()
        return [str(p) for p in run_step(flow.list_packages, inbox, period)]

    # each provider is a DuckDB file and a dbt run in its own process: a few at a time per run
    @task(map_index_template="{{ provider }}", max_active_tis_per_dagrun=PROVIDERS_AT_ONCE, **ONE_XCOM)
    def load_and_validate_provider(package_dir: str, period: str) -> dict:
        """One provider: its own DuckDB file, rules, DQMI, SDCS reports, LTP measures."""
        from pathlib import Path

        from airflow.sdk import get_current_context

        from mhsds_pipeline.system import flow

        get_current_context()["provider"] = Path(package_dir).name  # the mapped task's label
        _, _, work = flow.system_dirs()
        return run_step(flow.load_and_validate_provider, Path(package_dir), period, work).summary()

    @task(**ONE_XCOM)
    def combine(period: str, outcomes: list[dict], run_id=None) -> dict:
        """Disclosure control, ICB figures, staged and promoted atomically with a manifest."""
        from mhsds_pipeline.system import flow

        inbox, out, work = flow.system_dirs()
        orgs = [o["org_id_provider"] for o in outcomes]
        return run_step(flow.combine, inbox, period, out, work, orgs, run_id or "manual")

    period = resolve_period()
    packages = list_packages(period)
    outcomes = load_and_validate_provider.partial(period=period).expand(package_dir=packages)
    combine(period, outcomes)


mhsds_system()
