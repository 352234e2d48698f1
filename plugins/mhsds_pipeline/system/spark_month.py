"""The system view's month with Spark as the warehouse: the flow of :mod:`.flow`, step for step.

Each provider's step does on Spark what :func:`.flow.load_and_validate_provider` does on DuckDB,
with the same code wherever the work is not the engine's:

* **Rules**: the package is loaded into Spark database ``provider_<ods>`` and the unchanged rule
  engine runs through the stand-in (:func:`.spark.validate_package_spark`).
* **dq_results, DQMI, SDCS reports**: :func:`.flow.write_provider_results` with a
  :class:`.spark.SparkWarehouse`. The DQMI's SQLAlchemy queries are compiled to DuckDB SQL with
  their values inline and transpiled; its table reflection (``information_schema.columns``) is
  answered from Spark's catalogue. The SDCS reports' queries are transpiled as the rules' are.
* **LTP measures**: the rows SDCS would accept (the engine's ``dq.<relation>__submit`` views, on
  Spark) become ``mhsds_published`` in the session's catalogue, **dbt-spark** builds the national
  derived tables from them (the same project and selection as on DuckDB:
  ``finance.build_derived``), and NHS England's measure SQL runs over the derived tables,
  read as Arrow (:func:`.measures.measure_values`, as for every warehouse).

The hand-over (``outcome.json`` and the result files in ``<work>/<YYYY-MM>/<ODS>/``) is the
DuckDB step's, so :func:`.flow.combine` publishes the month unchanged: the same files, which
tests/integration/test_spark_system.py compares byte for byte with the DuckDB path's.

Providers run one after another in the process's one SparkSession (:func:`.spark.spark_session`;
``MHSDS_SPARK_MASTER`` chooses local or a cluster): Spark parallelises within a provider.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.system.flow import (
    combine,
    list_packages,
    provider_folder,
    provider_outcome,
    write_provider_results,
)
from mhsds_pipeline.system.handover import ProviderOutcome

log = logging.getLogger(__name__)


def load_and_validate_provider_spark(
    package_dir: Path, period: str, work_dir: Path, spark=None
) -> ProviderOutcome:
    """One provider's package on Spark: load, rules, DQMI, SDCS reports and LTP measures; the
    hand-over :func:`.flow.combine` reads. A re-run replaces the provider's database and folder."""
    from dataclasses import replace

    from mhsds_pipeline.quality.dialect import to_spark
    from mhsds_pipeline.quality.rules import load_catalogue
    from mhsds_pipeline.submission.idb import table_specs
    from mhsds_pipeline.system import measures
    from mhsds_pipeline.system.spark import SparkWarehouse, spark_session, validate_package_spark
    from mhsds_pipeline.system.validate import duckdb_settings

    t0 = time.perf_counter()
    spark = spark or spark_session()
    rp = ReportingPeriod.parse(period)
    package_dir = Path(package_dir)
    org, out = provider_folder(package_dir, rp, work_dir)
    settings = duckdb_settings()
    catalogue = load_catalogue()
    pkg, rules, ctx = validate_package_spark(spark, package_dir, settings, catalogue)
    scored = write_provider_results(SparkWarehouse(spark), out, pkg, rules, ctx, catalogue)
    relation_of = {s.idb_table: s.model for s in table_specs(settings.dbt_project_dir)}
    tables = measures.submitted_tables(lambda q: spark.sql(to_spark(q)).toArrow(), rp, org, relation_of)
    ltp = provider_measures_spark(spark, replace(settings, warehouse_target="spark"), rp, tables, out / "dbt")
    return provider_outcome(
        rp, package_dir, f"spark:{ctx.schema}", work_dir, pkg, rules, scored, ltp, time.perf_counter() - t0
    )


def provider_measures_spark(spark, settings, period: ReportingPeriod, tables: dict, work_dir: Path) -> dict:
    """:func:`.measures.provider_raw_values` on Spark: ``tables`` (the provider's submitted rows)
    as ``mhsds_published`` in the session's catalogue, dbt-spark's build of the derived tables,
    then the national measure SQL over them (exact values: never published as they are)."""
    from mhsds_pipeline.finance import build_derived
    from mhsds_pipeline.finance.published import PUBLISHED_SCHEMA
    from mhsds_pipeline.spark_warehouse import SQL_CONF, load_tables_spark
    from mhsds_pipeline.system import measures

    for key, value in SQL_CONF.items():
        spark.conf.set(key, value)
    load_tables_spark(spark, PUBLISHED_SCHEMA, tables)
    build_derived(settings, f"{period} on Spark", Path(work_dir))
    return measures.measure_values(
        settings, period, read=lambda name: spark.table(f"analytics.`{name}`").toArrow()
    )


def run_system_month_spark(
    inbox_dir: Path, period: str, out_dir: Path, work_dir: Path, run_id: str = "manual", spark=None
) -> dict:
    """:func:`.flow.run_system_month` on Spark: each package in turn, then the same combine. A
    refused package stops the run before anything is published."""
    rp = str(ReportingPeriod.parse(period))
    orgs: list[str] = []
    for package_dir in list_packages(Path(inbox_dir), rp):
        outcome = load_and_validate_provider_spark(package_dir, rp, Path(work_dir), spark)
        orgs.append(outcome.org_id_provider)  # list_packages refused two packages of one provider
        log.info("Spark: provider %s done in %.1f s", outcome.org_id_provider, outcome.seconds)
    return combine(Path(inbox_dir), rp, Path(out_dir), Path(work_dir), orgs, run_id)
