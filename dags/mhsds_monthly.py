"""
### MHSDS monthly submission pipeline

Builds one reporting month of the Mental Health Services Data Set (v6) from the clinical
system and publishes it as Parquet under `output/<YYYY-MM>/`.

**Steps** (write-audit-publish): `extract` the period from the EPR in bounded chunks to the
landing zone -> `load_raw` into the warehouse (`raw_epr`) -> `validate_raw` (GX `raw__*` suites)
-> `dbt_build` the staging, intermediate and MHSDS marts with their contracts and tests ->
`quality_gate`: the MHSDS v6 rules by SQL pushdown (record/group rejections quarantined, group
rejections cascading), GX `marts__*` suites and Data Docs, DQMI; a critical failure (file-level
rejection) stops the run here -> `publish`: the submission tables (rejected rows excluded),
quarantine, DQ outputs and `manifest.json` written to a staging directory and promoted atomically;
emits the `mhsds_published` Asset (starts `mhsds_mhis`) -> `package_submission`: the SDCS
package. A failed run leaves the last good outputs of the period untouched; re-running a period
gives the same Parquet bytes.

**Period**: trigger with `{"period": "2026-10"}`; without it the run processes the month
before its logical date (the scheduled run on the 5th processes the previous month).

Owner: data engineering. Runbook: README.md, "Operating the pipeline".
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from mhsds_pipeline.alerts import default_args, task_retries
from mhsds_pipeline.assets import MHSDS_PUBLISHED

RETRIES = task_retries()  # 0 for `mhsds run` (fail fast), 2 when scheduled
DEFAULT_ARGS = default_args()


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
            pattern=r"^\d{4}-\d{2}$",
            description="Reporting period YYYY-MM; empty = the month before the logical date",
        )
    },
    tags=["mhsds", "submission"],
    doc_md=__doc__,
)
def mhsds_monthly():
    @task
    def resolve_period(params=None, logical_date=None) -> str:
        from mhsds_pipeline.pipeline import resolve_period as _resolve

        return _resolve((params or {}).get("period"), logical_date)

    @task(retries=RETRIES and RETRIES + 1)  # the source may be briefly unavailable: backoff
    def extract(period: str) -> dict:
        from mhsds_pipeline.pipeline import extract as _extract

        return _extract(period)

    @task
    def load_raw(period: str, extracted: dict) -> dict:
        from mhsds_pipeline.pipeline import load_raw as _load

        return _load(period)

    @task(retries=0)
    def validate_raw(period: str, loaded: dict, run_id=None) -> dict:
        """GX raw__* suites: the landed extract can be built from."""
        from mhsds_pipeline.pipeline import validate_raw as _validate

        return _validate(period, run_id)

    @task(retries=0)  # a dbt failure is deterministic: do not retry
    def dbt_build(period: str, extracted: dict, validated: dict) -> dict:
        from mhsds_pipeline.pipeline import transform

        return transform(period, extracted["source_watermark"])

    @task(retries=0)
    def quality_gate(period: str, built: dict, run_id=None) -> dict:
        """MHSDS rules (quarantine), GX marts suites and Data Docs, DQMI; blocks on critical."""
        from mhsds_pipeline.pipeline import quality

        return quality(period, run_id)

    @task(retries=0, outlets=[MHSDS_PUBLISHED])
    def publish(period: str, gated: dict, run_id=None, outlet_events=None) -> dict:
        from mhsds_pipeline.pipeline import publish as _publish

        result = _publish(period, run_id)
        if outlet_events is not None:  # tells the MHIS DAG which period was promoted
            outlet_events[MHSDS_PUBLISHED].extra = {"period": period, "version": result["version"]}
        return result

    @task(retries=0)
    def package_submission(period: str, published: dict, run_id=None) -> dict:
        """The SDCS submission package (IDB-order files, manifest, diff, audit log)."""
        from mhsds_pipeline.submission import package as _package

        return _package(period, run_id)

    period = resolve_period()
    extracted = extract(period)
    loaded = load_raw(period, extracted)
    validated = validate_raw(period, loaded)
    built = dbt_build(period, extracted, validated)
    gated = quality_gate(period, built)
    published = publish(period, gated)
    package_submission(period, published)


mhsds_monthly()
