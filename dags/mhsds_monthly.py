"""
### MHSDS monthly submission pipeline

Builds one reporting month of the Mental Health Services Data Set (v6) from the clinical
system and publishes it as Parquet under `output/<YYYY-MM>/`.

**Steps** (write-audit-publish): `extract` the period from the EPR in bounded chunks to the
landing zone -> `load_raw` into the warehouse (`raw_epr`) -> `validate_raw` (GX `raw__*` suites)
-> `dbt_build` the staging, intermediate and MHSDS marts with their contracts and tests ->
`quality_gate`: the MHSDS v6 rules by SQL pushdown (record/group rejections quarantined, group
rejections cascading), GX `marts__<IDB table>` suites and Data Docs, DQMI, the SDCS-shaped reports; a failure
of severity "file rejected" stops the run here -> `publish`: the submission tables (rejected rows excluded),
quarantine, DQ outputs and `manifest.json` written to a staging directory and promoted atomically;
emits the `mhsds_published` Asset (starts `mhsds_mhis`) -> `package_submission`: the SDCS
package. A failed run leaves the last good outputs of the period untouched; re-running a period
gives the same Parquet bytes.

**Period**: trigger with `{"period": "2026-10"}`; without it the run processes the month
before its logical date (the scheduled run on the 5th processes the previous month).

**Operating**: warehouse tasks run in the one-slot pool `mhsds_warehouse` (shared with
`mhsds_mhis`); only retryable failures (source unreachable, warehouse busy) are retried.

Owner: data engineering. Runbook: README.md, "Operating the pipeline" and "When things go wrong".
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from mhsds_pipeline.alerts import default_args
from mhsds_pipeline.assets import MHSDS_PUBLISHED, WAREHOUSE_POOL
from mhsds_pipeline.failures import run_step
from mhsds_pipeline.summaries import (
    ONE_XCOM,
    BuildSummary,
    ExtractSummary,
    GateSummary,
    LoadSummary,
    PackageSummary,
    PublishSummary,
    RawValidationSummary,
)

DEFAULT_ARGS = default_args()  # retries with backoff, alert callbacks
# Only failures a later try can cure are retried (source unreachable, warehouse busy): run_step
# fails deterministic errors (period, config, contract, quality gate) at once.
WAREHOUSE = {"pool": WAREHOUSE_POOL}  # one slot: the tasks that open the warehouse, both DAGs


@dag(
    dag_id="mhsds_monthly",
    description="Monthly MHSDS v6: extract, dbt, quality gate, Parquet publication, submission package",
    schedule="0 6 5 * *",
    start_date=pendulum.datetime(2024, 4, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "period": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="Reporting period YYYY-MM; empty = the month before the logical date",
        ),
        "allow_open_period": Param(
            False,
            type="boolean",
            description="Rebuild a month that has not ended yet (never packaged, not sent to finance)",
        ),
    },
    tags=["mhsds", "submission"],
    doc_md=__doc__,
)
def mhsds_monthly():
    @task
    def resolve_period(params=None, logical_date=None) -> str:
        from mhsds_pipeline.pipeline import resolve_period as _resolve

        params = params or {}
        return run_step(_resolve, params.get("period"), logical_date, bool(params.get("allow_open_period")))

    # Each task keeps one small typed summary in XCom (mhsds_pipeline.summaries).
    @task(**ONE_XCOM)
    def extract(period: str) -> ExtractSummary:
        from mhsds_pipeline import summaries
        from mhsds_pipeline.pipeline import extract as _extract

        return summaries.extract(run_step(_extract, period))

    @task(**WAREHOUSE, **ONE_XCOM)
    def load_raw(period: str, extracted: ExtractSummary, run_id=None) -> LoadSummary:
        from mhsds_pipeline import summaries
        from mhsds_pipeline.pipeline import load_raw as _load

        return summaries.load(run_step(_load, period, warehouse_holder=run_id))

    @task(**WAREHOUSE, **ONE_XCOM)
    def validate_raw(period: str, loaded: LoadSummary, run_id=None) -> RawValidationSummary:
        """GX raw__* suites: the landed extract can be built from."""
        from mhsds_pipeline import summaries
        from mhsds_pipeline.pipeline import validate_raw as _validate

        return summaries.raw_validation(run_step(_validate, period, run_id, warehouse_holder=run_id))

    @task(**WAREHOUSE, **ONE_XCOM)
    def dbt_build(
        period: str, extracted: ExtractSummary, validated: RawValidationSummary, run_id=None
    ) -> BuildSummary:
        from mhsds_pipeline import summaries
        from mhsds_pipeline.pipeline import transform

        return summaries.build(
            run_step(transform, period, extracted["source_watermark"], warehouse_holder=run_id)
        )

    @task(**WAREHOUSE, **ONE_XCOM)
    def quality_gate(period: str, built: BuildSummary, run_id=None) -> GateSummary:
        """MHSDS rules (quarantine), GX marts suites and Data Docs, DQMI; blocks on "file rejected"."""
        from mhsds_pipeline import summaries
        from mhsds_pipeline.pipeline import quality

        return summaries.gate(run_step(quality, period, run_id, warehouse_holder=run_id))

    @task(outlets=[MHSDS_PUBLISHED], **WAREHOUSE, **ONE_XCOM)
    def publish(period: str, gated: GateSummary, run_id=None, outlet_events=None) -> PublishSummary:
        from mhsds_pipeline import summaries
        from mhsds_pipeline.pipeline import is_open_period
        from mhsds_pipeline.pipeline import publish as _publish

        result = run_step(_publish, period, run_id, warehouse_holder=run_id)
        if outlet_events is not None:  # tells the MHIS DAG which period was promoted
            extra = {"period": period, "version": result["version"]}
            if is_open_period(period):
                extra["open_period"] = True  # a rebuild of an unfinished month: MHIS ignores it
            outlet_events[MHSDS_PUBLISHED].extra = extra
        return summaries.publish(result)

    @task(**ONE_XCOM)
    def package_submission(period: str, published: PublishSummary, run_id=None) -> PackageSummary:
        """The SDCS submission package (IDB-order files, manifest, diff, audit log)."""
        from mhsds_pipeline.pipeline import is_open_period

        if is_open_period(period):
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"MHSDS {period} has not ended: an open month is never packaged")
        from mhsds_pipeline import summaries
        from mhsds_pipeline.submission import package as _package

        return summaries.package(run_step(_package, period, run_id))

    period = resolve_period()
    extracted = extract(period)
    loaded = load_raw(period, extracted)
    validated = validate_raw(period, loaded)
    built = dbt_build(period, extracted, validated)
    gated = quality_gate(period, built)
    published = publish(period, gated)
    package_submission(period, published)


mhsds_monthly()
