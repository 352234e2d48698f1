"""The warehouse on Spark: the raw extract registered in a SparkSession's catalogue, and the dbt
project built there with dbt-spark's ``session`` method (profile target ``spark``).

dbt-spark's session method runs every statement through ``SparkSession.builder.getOrCreate()``,
so dbt must run in the process that owns the session: :func:`transform_spark` invokes dbt
in-process (``dbtRunner``) after :func:`load_raw_spark` has registered the period's landing
Parquet files as tables ``raw_epr.<table>``, the names the dbt sources read on DuckDB and
PostgreSQL. Locally (tests) :func:`local_session` starts a single-machine session on loopback
with an in-memory catalogue; on a Spark/Databricks cluster the cluster's own session is used.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from mhsds_pipeline.config import Settings
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.source.schema import TABLE_NAMES
from mhsds_pipeline.warehouse import RAW_SCHEMA

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: What the dbt profile's spark target sets too (server_side_parameters): MHSDS *Time items are
#: SQL TIME, and `timestamp` has no time zone, as on DuckDB and PostgreSQL.
SQL_CONF = {
    "spark.sql.timeType.enabled": "true",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.session.timeZone": "UTC",
}


def local_session(warehouse_dir: Path, cores: int = 2) -> SparkSession:
    """A single-machine SparkSession for tests and laptops: loopback only, no UI, in-memory
    catalogue, managed tables under ``warehouse_dir``. Returns the running session if one exists.

    Give each session a fresh ``warehouse_dir``: the in-memory catalogue forgets its tables when
    the process ends but their files stay, and Spark refuses to create a managed table over an
    existing directory (LOCATION_ALREADY_EXISTS)."""
    from pyspark.sql import SparkSession

    warehouse_dir.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("mhsds-dbt")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(warehouse_dir))
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.default.parallelism", str(cores))
    )
    return _start(builder)


def _start(builder) -> SparkSession:
    """Every session's SQL semantics (:data:`SQL_CONF`), quiet logs."""
    for key, value in SQL_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def local_cores(master: str) -> int | None:
    """Cores of a ``local``, ``local[N]`` or ``local[*]`` master; None for a cluster URL."""
    import os
    import re

    m = re.fullmatch(r"local(?:\[(\d+|\*)\])?", master)
    if m is None:
        return None
    if m.group(1) in (None, "*"):
        return 1 if m.group(1) is None else (os.cpu_count() or 1)
    return int(m.group(1))


def spark_session(warehouse_dir: Path) -> SparkSession:
    """The session ``MHSDS_SPARK_MASTER`` asks for: ``local[N]`` (default ``local[2]``) runs Spark
    in this process's JVM (:func:`local_session`); a cluster URL (``spark://spark-master:7077``,
    docker-compose's profile "spark") sends the work to that cluster's executors, which must see
    ``warehouse_dir`` at the same path (the shared data volume)."""
    from pyspark.sql import SparkSession

    from mhsds_pipeline.settings import read_settings

    master = read_settings().spark_master
    cores = local_cores(master)
    if cores is not None:
        return local_session(warehouse_dir, cores)
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(master)
        .appName("mhsds")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(warehouse_dir))
    )
    return _start(builder)


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


#: Landing Parquet type -> Spark type (the extract writes these four: extract.arrow_type).
_SPARK_TYPES = {
    "string": "string",
    "date32[day]": "date",
    "timestamp[us]": "timestamp_ntz",
    "int64": "bigint",
}


def _columns_ddl(schema) -> str:
    """The table's columns stated from the file's schema, so Spark need not infer it (a job per
    table)."""
    return ", ".join(f"{_quote(f.name)} {_SPARK_TYPES[str(f.type)]}" for f in schema)


def load_raw_spark(spark: SparkSession, landing_dir: Path) -> dict[str, int]:
    """Register the period's landing files as ``raw_epr.<table>`` (replacing the previous
    period's); returns row counts per table.

    As :func:`mhsds_pipeline.warehouse.load_raw`: the landing directory is verified against its
    ``_extract.json`` first, and the registered row counts are checked against the extract's.
    The tables are external Parquet tables over the landing files (no copy): Parquet keeps the
    extract's types (text, date, timestamp without time zone, bigint)."""
    from mhsds_pipeline.extract import LandingError, verify_landing

    extracted = verify_landing(landing_dir)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(RAW_SCHEMA)}")
    counts: dict[str, int] = {}
    for name in TABLE_NAMES:
        relation = f"{_quote(RAW_SCHEMA)}.{_quote(name)}"
        path = (landing_dir / f"{name}.parquet").resolve()
        meta = pq.ParquetFile(path)
        spark.sql(f"DROP TABLE IF EXISTS {relation}")
        spark.sql(
            f"CREATE TABLE {relation} ({_columns_ddl(meta.schema_arrow)}) USING parquet "
            f"LOCATION '{path.as_posix()}'"
        )
        # the table is the file: its Parquet footer's row count is what Spark reads (a count(*)
        # job per table would cost ~0.3 s each on a local session)
        counts[name] = meta.metadata.num_rows
    expected = extracted.row_counts
    differ = [f"{t} loaded {n} rows, extracted {expected[t]}" for t, n in counts.items() if n != expected[t]]
    if differ:
        raise LandingError(
            f"Landing zone of {extracted.period}: {'; '.join(differ)}. "
            f"The files changed while loading: re-run the extract for {extracted.period}."
        )
    return counts


def load_tables_spark(spark: SparkSession, schema: str, tables: dict[str, pa.Table]) -> dict[str, int]:
    """Replace the tables of ``schema`` in the session's catalogue with ``tables`` (Arrow, e.g. the
    finance extract of ``finance.loader.read_source`` or the published months of
    ``finance.published.published_tables``), as ``finance.loader.load_schema`` does on DuckDB and
    PostgreSQL; returns row counts. Managed tables in the session's default format."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(schema)}")
    counts: dict[str, int] = {}
    for name, table in tables.items():
        relation = f"{_quote(schema)}.{_quote(name)}"
        spark.sql(f"DROP TABLE IF EXISTS {relation}")
        spark.createDataFrame(table).write.saveAsTable(relation)
        counts[name] = table.num_rows
    return counts


def spark_work_dir(settings: Settings, period: ReportingPeriod | str) -> Path:
    """dbt's target and logs for a Spark build (beside, not over, the DuckDB build's)."""
    return settings.data_dir / "dbt_spark" / str(period)


def transform_spark(
    settings: Settings,
    period: ReportingPeriod,
    source_watermark: str | None,
    spark: SparkSession | None = None,
    select: list[str] | None = None,
    finance: bool = False,
) -> dict:
    """``dbt build --target spark`` for the period in this process (the session is shared with
    dbt-spark); raises TransformError naming each failed node, as the DuckDB build does.

    ``spark``: the session holding ``raw_epr`` (default: the active one). ``select``: extra dbt
    selection arguments (default: everything but the v6 code-list seeds, as :func:`build`).
    ``finance``: enable the finance and derived nodes too (they read ``raw_finance`` and
    ``mhsds_published``, see :func:`load_tables_spark`), so one invocation builds all 99 models."""
    from pyspark.sql import SparkSession

    from mhsds_pipeline.transform import TransformError, dbt_vars, run_dbt

    session = spark or SparkSession.getActiveSession()
    if session is None:
        raise TransformError(
            f"No SparkSession for reporting period {period}: start one (spark_warehouse.local_session "
            "locally, the cluster's session on Spark) and load_raw_spark the landing files first."
        )
    for key, value in SQL_CONF.items():
        session.conf.set(key, value)
    work_dir = spark_work_dir(settings, period)
    t0 = time.perf_counter()
    args = ["build", *(select or ["--exclude", "path:seeds/reference/v6"])]
    vars_ = {**dbt_vars(settings, period, source_watermark), **({"finance_enabled": True} if finance else {})}
    ok, nodes = run_dbt(replace(settings, warehouse_target="spark"), args, vars_, work_dir)
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status] = counts.get(n.status, 0) + 1
    seconds = round(time.perf_counter() - t0, 3)
    failed = [n for n in nodes if n.status in ("error", "fail")]
    if not ok:
        raise TransformError(
            f"dbt build on Spark failed for reporting period {period}: "
            + "; ".join([f"{n.unique_id} ({n.status}: {n.message})" for n in failed] or ["see dbt logs"])
            + f". Logs: {work_dir / 'logs'}",
            tuple(n.check_id or n.unique_id for n in failed),
        )
    log.info("dbt build on Spark for %s: %s in %.1f s", period, counts, seconds)
    return {"period": str(period), "success": ok, "seconds": seconds, "counts": counts, "nodes": nodes}
