"""The system view on Spark: providers' packages validated with the same rules catalogue.

NHS England processes MHSDS on Spark. This module runs the rule engine
(:func:`mhsds_pipeline.quality.engine.run_rules`) there, unchanged: :class:`SparkWarehouse`
stands in for the SQLAlchemy engine the rule engine is given, and every statement the engine
issues (its DDL, each rule's ``INSERT`` of failing keys, the cascade's views, the counts) is
transpiled from DuckDB SQL to Spark SQL by :func:`mhsds_pipeline.quality.dialect.to_spark` and run
with ``spark.sql``. So the cascade (a ``references`` rule looks for a parent not itself
rejected), the ``dq.<table>__submit`` / ``__quarantine`` views and the dq_results rows are the
engine's own, and :func:`validate_packages_spark` returns the rows
:func:`mhsds_pipeline.system.validate.validate_packages` returns on DuckDB.

What the stand-in does besides transpiling (each needed on Spark only):

* **Catalogue query.** Spark's session catalog has no ``information_schema``: the engine's
  ``existing_tables`` query is answered from ``spark.catalog.listTables``.
* **Batched failure inserts.** A Spark ``INSERT`` is a job (about 0.3 s here even when empty),
  and the catalogue has ~1,200 row-level rules. The ``INSERT INTO dq.rule_failures`` statements
  are held and written as one ``INSERT ... UNION ALL ...`` just before any statement that reads
  the failures (a ``references`` rule: the cascade needs its parents' failures; a query) runs,
  so every statement still sees exactly the rows it would have seen one by one.
* **Errors name the rule.** When Spark refuses a batch, its statements are re-run one by one
  and the error names the rule whose SQL Spark refused.

Packages are read by :func:`mhsds_pipeline.system.sources.load_package` itself (refusals and the
row quarantine are its own) into a throwaway DuckDB file, then each table is handed to Spark as
Arrow with the contract's types and written to a Spark table created from the contract's DDL.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from mhsds_pipeline.quality.dialect import SparkTranspileError, compile_catalogue, deep_recursion, to_spark
from mhsds_pipeline.quality.engine import FAILURES, run_rules
from mhsds_pipeline.quality.rules import DBT_PROJECT, load_catalogue
from mhsds_pipeline.submission.idb import table_specs
from mhsds_pipeline.system.sources import LoadedPackage, PackageError, load_package, package_header
from mhsds_pipeline.system.validate import RESULTS_FILE, ProviderResults, provider_schema

log = logging.getLogger(__name__)

#: most failure inserts written as one statement (a bound on the plan's size)
BATCH = 250
#: the last run's executor counters (statements, batches, seconds): for measuring
LAST_STATS: dict[str, float] = {}

_lock = threading.Lock()
_session = None


def spark_session(data_dir: Path | None = None):
    """The process's one local SparkSession (local[2], no UI, loopback only, UTC, Spark's
    ``TIME`` type on, ``TIMESTAMP`` without time zone as the contracts mean it)."""
    global _session
    with _lock:
        if _session is not None:
            return _session
        from pyspark.sql import SparkSession

        root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="mhsds_spark_"))
        root.mkdir(parents=True, exist_ok=True)
        _session = (
            SparkSession.builder.master("local[2]")
            .appName("mhsds_system")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.timeType.enabled", "true")
            .config("spark.sql.timestampType", "TIMESTAMP_NTZ")
            .config("spark.sql.warehouse.dir", str(root / "warehouse"))
            .config("spark.local.dir", str(root / "tmp"))
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={root / 'derby'}")
            .getOrCreate()
        )
        _session.sparkContext.setLogLevel("ERROR")
        return _session


# ------------------------------------------------------------------------------ executor


class _Result:
    """The slice of SQLAlchemy's result the rule engine reads: iteration and ``scalar_one``."""

    def __init__(self, rows=()):
        self._rows = [tuple(r) for r in rows]

    def __iter__(self):
        return iter(self._rows)

    def fetchall(self):
        return list(self._rows)

    def scalar_one(self):
        if len(self._rows) != 1 or len(self._rows[0]) != 1:
            raise ValueError(f"expected one value, got {len(self._rows)} row(s)")
        return self._rows[0][0]


@lru_cache(maxsize=8192)
def _failure_insert(sql: str) -> tuple[str, str, str, frozenset[str]] | None:
    """For an ``INSERT INTO dq.rule_failures ... SELECT``: (rule id, its table, its SELECT in
    Spark SQL, the tables whose failures the SELECT reads: a ``references`` rule's parent)."""
    if not sql.startswith(f"INSERT INTO {FAILURES} "):
        return None
    with deep_recursion():  # the SNOMED CT checks nest deeply
        select = sqlglot.parse_one(sql, read="duckdb").expression
        literals = [e.this if isinstance(e, exp.Literal) else None for e in select.expressions[:2]]
        spark_select = to_spark(select.sql(dialect="duckdb"), literals[0])
    reads = (
        frozenset(_FAILURES_READ.findall(spark_select)) if "rule_failures" in spark_select else frozenset()
    )
    if "rule_failures" in spark_select and not reads:
        reads = frozenset({"*"})  # reads failures in a way not recognised: flush everything first
    return literals[0], literals[1], spark_select, reads


_FAILURES_READ = re.compile(r"rule_failures AS f WHERE f\.table_name = '([^']+)'")


class _SparkConnection:
    def __init__(self, spark):
        self.spark = spark
        self._pending: list[tuple[str, str, str]] = []  # (rule id, table, Spark SELECT)
        self.stats = {"flushes": 0, "queries": 0, "flush_s": 0.0, "query_s": 0.0}

    def execute(self, statement, params=None) -> _Result:
        sql = statement.text if hasattr(statement, "text") else str(statement)
        if "information_schema.tables" in sql.lower():  # existing_tables(conn, schema)
            schema = (params or {}).get("s")
            if not self.spark.catalog.databaseExists(schema):
                return _Result()
            return _Result((t.name,) for t in self.spark.catalog.listTables(schema) if not t.isTemporary)
        if params:
            raise NotImplementedError(f"bound parameters are not supported on Spark: {sql[:80]}")
        insert = _failure_insert(sql)
        if insert is not None:
            rule_id, table, select, reads = insert
            # the cascade: a rule reading a parent's failures sees all of them, as run one by one
            if reads and any(t in reads or "*" in reads for _, t, _ in self._pending):
                self.flush()
            self._pending.append((rule_id, table, select))
            if len(self._pending) >= BATCH:
                self.flush()
            return _Result()
        spark_sql = to_spark(sql)
        is_query = spark_sql.lstrip().upper().startswith(("SELECT", "WITH"))
        if is_query or spark_sql.lstrip().upper().startswith("INSERT"):
            self.flush()
        t0 = time.perf_counter()
        df = self.spark.sql(spark_sql)
        out = _Result(df.collect()) if is_query else _Result()
        self.stats["queries"] += 1
        self.stats["query_s"] += time.perf_counter() - t0
        return out

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        head = f"INSERT INTO {FAILURES} (rule_id, table_name, row_key, severity, cause) "
        t0 = time.perf_counter()
        try:
            self.spark.sql(head + " UNION ALL ".join(s for _, _, s in pending))
        except Exception as batch_exc:
            # the batch is one statement (all or nothing): find the rule Spark refuses
            for rule_id, _, select in pending:
                try:
                    self.spark.sql(f"EXPLAIN {select}")
                except Exception as exc:
                    raise SparkTranspileError(f"Spark refuses the rule's SQL: {exc}", rule_id) from exc
            raise batch_exc
        self.stats["flushes"] += 1
        self.stats["flush_s"] += time.perf_counter() - t0


class SparkWarehouse:
    """What :func:`run_rules` needs of a SQLAlchemy engine (``begin()``), on a SparkSession."""

    def __init__(self, spark):
        self.spark = spark

    @contextmanager
    def begin(self):
        conn = _SparkConnection(self.spark)
        yield conn
        conn.flush()
        LAST_STATS.clear()
        LAST_STATS.update(conn.stats)
        log.info("Spark executor: %s", {k: round(v, 2) for k, v in conn.stats.items()})

    def dispose(self) -> None:
        pass


# ------------------------------------------------------------------------------ packages


def _spark_ddl(schema: str, spec) -> str:
    """The contract's table as Spark DDL: the DuckDB DDL ``sources`` writes, transpiled."""
    cols = ", ".join(f'"{c.name}" {c.data_type.upper()}' for c in spec.columns)
    return to_spark(f'CREATE TABLE "{schema}"."{spec.model}" ({cols})')


def load_package_spark(
    spark, package_dir: Path, schema: str, dbt_project_dir: Path = DBT_PROJECT
) -> LoadedPackage:
    """Load a package into Spark database ``schema``, one table per IDB table, contract-typed."""
    specs = table_specs(Path(dbt_project_dir))
    with tempfile.TemporaryDirectory(prefix="mhsds_load_") as tmp:
        engine = sa.create_engine(f"duckdb:///{Path(tmp) / 'package.duckdb'}")
        try:
            pkg = load_package(Path(package_dir), engine, schema, dbt_project_dir)
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                tables = {
                    s.model: raw.execute(f'SELECT * FROM "{schema}"."{s.model}"').to_arrow_table()
                    for s in specs
                }
        finally:
            engine.dispose()
    spark.sql(f"DROP DATABASE IF EXISTS `{schema}` CASCADE")
    spark.sql(f"CREATE DATABASE `{schema}`")
    for spec in specs:
        spark.sql(_spark_ddl(schema, spec))
        table = tables[spec.model].cast(spec.arrow_schema)  # the contract's Arrow types
        if table.num_rows:
            spark.createDataFrame(table).write.insertInto(f"`{schema}`.`{spec.model}`")
    return replace(pkg, schema=schema)


def validate_packages_spark(
    package_dirs: list[Path],
    output_path: Path | None = None,
    run_id: str = "system",
    spark=None,
) -> ProviderResults:
    """:func:`~mhsds_pipeline.system.validate.validate_packages` on Spark: each package in its own
    Spark database ``provider_<ods>``, the rule engine run on it through :class:`SparkWarehouse`."""
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.quality.gate import sql_context

    spark = spark or spark_session()
    settings = replace(load_settings(), warehouse_target="duckdb")  # the SQL is written for DuckDB
    catalogue = load_catalogue()
    warehouse = SparkWarehouse(spark)
    results = ProviderResults(run_id)
    for package_dir in package_dirs:
        t0 = time.perf_counter()
        org, _, _ = package_header(Path(package_dir))
        if org in results.packages:
            raise PackageError(
                f"{package_dir}: provider {org} already loaded from "
                f"{results.packages[org].package_dir}; give one package per provider"
            )
        schema = provider_schema(org)
        pkg = load_package_spark(spark, Path(package_dir), schema)
        ctx = replace(
            sql_context(settings, pkg.period),
            schema=schema,
            org_id_provider=pkg.org_id_provider,
            org_id_submit=pkg.org_id_submit,
            dialect="duckdb",
        )
        compile_catalogue(catalogue, ctx)  # every rule transpiles, or nothing runs (names the rule)
        results.packages[pkg.org_id_provider] = pkg
        results.outcomes[pkg.org_id_provider] = run_rules(warehouse, catalogue, ctx)
        log.info("Spark: provider %s validated in %.1fs", org, time.perf_counter() - t0)
    if output_path is not None:
        output_path = Path(output_path)
        if output_path.suffix != ".parquet":
            output_path = output_path / RESULTS_FILE
        output_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(results.to_table(), output_path)
    return results


def spark_schema_types(spark, schema: str, model: str) -> dict[str, str]:
    """Column -> Spark SQL type of a loaded table (for checks against the contract)."""
    return {f.name: f.dataType.simpleString() for f in spark.table(f"`{schema}`.`{model}`").schema.fields}
