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
  ``existing_tables`` query is answered from ``SHOW TABLES IN <schema>``.
* **Batched failure inserts.** A Spark ``INSERT`` is a job (about 0.3 s here even when empty),
  and the catalogue has ~1,200 row-level rules. The ``INSERT INTO dq.rule_failures`` statements
  are held and written :data:`BATCH` at a time as one ``INSERT ... UNION ALL ...`` (coalesced to
  one task per core), and always before a statement that reads failures still held: a
  ``references`` rule whose parent table has held inserts (the cascade), or any query. So every
  statement sees exactly the rows it would have seen had the inserts run one by one.
* **Errors name the rule.** When Spark refuses a batch, its statements are re-run one by one
  (``EXPLAIN``) and the error names the rule whose SQL Spark refused.

Packages are read by :func:`mhsds_pipeline.system.sources.load_package` itself (refusals and the
row quarantine are its own) into a throwaway DuckDB file; each filled table is handed to Spark
as Arrow with the contract's types and inserted into a table created from the contract's DDL
(transpiled); a table the package leaves empty is a contract-typed view with no rows, which
Spark's optimizer prunes from every rule that reads it. Small packages run with Spark's
interpreted expressions (code generation costs more than it saves there; ``codegen=True`` for
volume). :func:`gx_counts_spark` runs the project's GX expectations through GX's Spark
datasource, for the cross-check between engines.

Measured on the two test packages (tests/integration/test_spark_system.py, load average ~5 on
2 cores): the rule engine takes 22-35 s per provider on Spark against ~2.3 s on DuckDB.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from mhsds_pipeline.quality.dialect import SparkTranspileError, compile_catalogue, deep_recursion, to_spark
from mhsds_pipeline.quality.engine import FAILURES, RulesOutcome, run_rules
from mhsds_pipeline.quality.rules import DBT_PROJECT, SqlContext, load_catalogue
from mhsds_pipeline.submission.idb import table_specs
from mhsds_pipeline.system.sources import LoadedPackage, PackageError, load_package, package_header
from mhsds_pipeline.system.validate import ProviderResults, duckdb_settings, provider_schema

log = logging.getLogger(__name__)

#: most failure inserts written as one statement. Spark's planning grows faster than the plan
#: (measured on the test packages: 250 -> 77 s of batches per provider, 60 -> 58 s, 25 -> 57 s)
BATCH = 60
#: tasks per batch of failure inserts (local[2]: one per core)
PARTITIONS = 2
#: the last run's executor counters (statements, batches, seconds): for measuring
LAST_STATS: dict[str, float] = {}

_session = None


def spark_session(data_dir: Path | None = None):
    """The process's one SparkSession: :func:`mhsds_pipeline.spark_warehouse.spark_session`, the
    engine ``MHSDS_SPARK_MASTER`` names (default local[2]: no UI, loopback only; UTC, Spark's
    ``TIME`` type on, ``TIMESTAMP`` without time zone), with its warehouse under ``data_dir`` or a
    fresh temporary directory. A session already running in the process (dbt-spark's, a test's) is
    the one returned."""
    global _session
    from mhsds_pipeline.spark_warehouse import spark_session as configured_session

    if _session is None or _session.sparkContext._jsc is None:
        # a fresh directory per session, under data_dir when given: the in-memory catalogue forgets
        # its tables with the process, their files stay, and Spark refuses to create a managed
        # table over an existing directory (LOCATION_ALREADY_EXISTS) on the next run
        if data_dir:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="mhsds_spark_", dir=data_dir))
        _session = configured_session(root / "warehouse")
    return _session


# ------------------------------------------------------------------------------ executor


class _Row(tuple):
    """A result row by position, by column name (``row.attended``) and as a mapping's values."""

    _keys: tuple[str, ...] = ()

    def __getattr__(self, name: str):
        try:
            return self[self._keys.index(name)]
        except ValueError:
            raise AttributeError(name) from None


class _Result:
    """The slice of SQLAlchemy's result the rule engine, the DQMI and the SDCS reports read:
    iteration, ``all``/``one``/``scalar_one`` and ``mappings``."""

    def __init__(self, rows=(), keys=()):
        self.keys = tuple(keys)
        self._rows = []
        for r in rows:
            row = _Row(r)
            row._keys = self.keys
            self._rows.append(row)

    def __iter__(self):
        return iter(self._rows)

    def fetchall(self):
        return list(self._rows)

    all = fetchall

    def one(self):
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def scalar_one(self):
        row = self.one()
        if len(row) != 1:
            raise ValueError(f"expected one value, got {len(row)}")
        return row[0]

    def mappings(self) -> _Result:
        out = _Result()
        out._rows = [dict(zip(self.keys, r, strict=True)) for r in self._rows]
        return out


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
        if isinstance(statement, sa.sql.ClauseElement) and not hasattr(statement, "text"):
            # SQLAlchemy Core (the DQMI's queries): DuckDB SQL with its values inline, then Spark SQL
            statement = str(
                statement.compile(dialect=_duckdb_dialect(), compile_kwargs={"literal_binds": True})
            )
        sql = statement.text if hasattr(statement, "text") else str(statement)
        if "information_schema.columns" in sql.lower():
            return self._columns(sql)
        if "information_schema.tables" in sql.lower():  # existing_tables(conn, schema)
            schema = (params or {}).get("s")
            if not self.spark.sql(f"SHOW DATABASES LIKE '{schema}'").collect():
                return _Result()
            rows = self.spark.sql(f"SHOW TABLES IN `{schema}`").collect()
            return _Result((r["tableName"],) for r in rows if not r["isTemporary"])
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
        out = _Result(df.collect(), df.columns) if is_query else _Result()
        self.stats["queries"] += 1
        self.stats["query_s"] += time.perf_counter() - t0
        return out

    def _columns(self, sql: str) -> _Result:
        """A query of ``information_schema.columns`` (the DQMI reflects its tables so), answered
        from Spark's catalogue: the same query run by DuckDB over the schema's columns as Spark
        names their types (``string``, ``date``, ``timestamp_ntz``, ``time(6)``, ``int`` ...)."""
        import duckdb
        import pyarrow as pa

        schemas = set(re.findall(r"table_schema\s*=\s*'([^']+)'", sql))
        rows = []
        for schema in sorted(schemas):
            if not self.spark.sql(f"SHOW DATABASES LIKE '{schema}'").collect():
                continue
            for t in self.spark.sql(f"SHOW TABLES IN `{schema}`").collect():
                if t["isTemporary"]:
                    continue
                fields = self.spark.table(f"`{schema}`.`{t['tableName']}`").schema.fields
                for n, f in enumerate(fields, start=1):
                    rows.append((schema, t["tableName"], f.name, f.dataType.simpleString(), n))
        names = ("table_schema", "table_name", "column_name", "data_type", "ordinal_position")
        spark_columns = pa.table(  # noqa: F841 (read by DuckDB's replacement scan)
            {k: [r[i] for r in rows] for i, k in enumerate(names)},
            schema=pa.schema(
                [*(pa.field(k, pa.string()) for k in names[:4]), pa.field(names[4], pa.int64())]
            ),
        )
        con = duckdb.connect()
        try:
            rel = con.sql(re.sub(r"information_schema\.columns", "spark_columns", sql, flags=re.I))
            return _Result(rel.fetchall(), rel.columns)
        finally:
            con.close()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        head = f"INSERT INTO {FAILURES} (rule_id, table_name, row_key, severity, cause) "
        t0 = time.perf_counter()
        try:
            # one task per core, not one per branch: each branch is a tiny scan, and a task's
            # scheduling costs more than its work
            union = " UNION ALL ".join(s for _, _, s in pending)
            self.spark.sql(f"{head}SELECT /*+ COALESCE({PARTITIONS}) */ * FROM ({union}) AS u")
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

    connect = begin  # the DQMI and the SDCS reports read through connect()

    def dispose(self) -> None:
        pass


@lru_cache(maxsize=1)
def _duckdb_dialect():
    from duckdb_engine import Dialect

    return Dialect(paramstyle="named")  # values inline: no "%" doubled for a driver's format style


# ------------------------------------------------------------------------------ packages


def spark_table_ddl(schema: str, spec) -> str:
    """The contract's table as Spark DDL: the DuckDB DDL ``sources`` writes, transpiled."""
    cols = ", ".join(f'"{c.name}" {c.data_type.upper()}' for c in spec.columns)
    return to_spark(f'CREATE TABLE "{schema}"."{spec.model}" ({cols})')


#: A table the package does not fill is a view with the contract's columns and no rows, not an
#: empty file-backed table: Spark's optimizer then drops the rules' scans of it (an empty relation
#: propagates), instead of planning and running a scan per rule. Same rows, same types.
EMPTY_AS_VIEWS = True


def _empty_view_ddl(schema: str, spec) -> str:
    cols = ", ".join(f'CAST(NULL AS {c.data_type.upper()}) AS "{c.name}"' for c in spec.columns)
    return to_spark(f'CREATE VIEW "{schema}"."{spec.model}" AS SELECT {cols} WHERE FALSE')


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
                    s.model: raw.sql(f'SELECT * FROM "{schema}"."{s.model}"').to_arrow_table() for s in specs
                }
        finally:
            engine.dispose()
    spark.sql(f"DROP DATABASE IF EXISTS `{schema}` CASCADE")
    spark.sql(f"CREATE DATABASE `{schema}`")
    for spec in specs:
        table = tables[spec.model].cast(spec.arrow_schema)  # the contract's Arrow types
        if not table.num_rows and EMPTY_AS_VIEWS:
            spark.sql(_empty_view_ddl(schema, spec))
            continue
        spark.sql(spark_table_ddl(schema, spec))
        if table.num_rows:
            spark.createDataFrame(table).write.insertInto(f"`{schema}`.`{spec.model}`")
    return replace(pkg, schema=schema)


def validate_packages_spark(
    package_dirs: list[Path],
    output_path: Path | None = None,
    run_id: str = "system",
    spark=None,
    codegen: bool = False,
) -> ProviderResults:
    """:func:`~mhsds_pipeline.system.validate.validate_packages` on Spark: each package in its own
    Spark database ``provider_<ods>``, the rule engine run on it through :class:`SparkWarehouse`."""
    spark = spark or spark_session()
    with _sql_conf(spark, {} if codegen else _INTERPRETED):
        return _validate(spark, package_dirs, output_path, run_id)


#: Small packages: Spark's generated code costs more to compile (Janino, per rule predicate;
#: the SNOMED CT check digit is a large expression) than it saves. Measured on the test
#: packages: 219 s -> 136 s per provider. At national volumes pass ``codegen=True``.
_INTERPRETED = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


@contextmanager
def _sql_conf(spark, conf: dict[str, str]):
    """Session SQL settings for the duration of one call (the session is shared: dbt, tests)."""
    old = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def validate_package_spark(
    spark, package_dir: Path, settings, catalogue
) -> tuple[LoadedPackage, RulesOutcome, SqlContext]:
    """:func:`~mhsds_pipeline.system.validate.validate_package` on Spark: the package loaded into
    Spark database ``provider_<ods>`` and the rule engine run on it through :class:`SparkWarehouse`
    (``settings`` for DuckDB SQL: the stand-in transpiles it). The context returned is the one
    the rules ran with."""
    from mhsds_pipeline.quality.gate import sql_context

    org, _, _ = package_header(Path(package_dir))
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
    return pkg, run_rules(SparkWarehouse(spark), catalogue, ctx), ctx


def _validate(spark, package_dirs, output_path, run_id) -> ProviderResults:
    settings = duckdb_settings()
    catalogue = load_catalogue()
    results = ProviderResults(run_id)
    for package_dir in package_dirs:
        t0 = time.perf_counter()
        org, _, _ = package_header(Path(package_dir))
        if org in results.packages:
            raise PackageError(
                f"{package_dir}: provider {org} already loaded from "
                f"{results.packages[org].package_dir}; give one package per provider"
            )
        pkg, rules, _ = validate_package_spark(spark, Path(package_dir), settings, catalogue)
        results.packages[pkg.org_id_provider] = pkg
        results.outcomes[pkg.org_id_provider] = rules
        log.info("Spark: provider %s validated in %.1fs", org, time.perf_counter() - t0)
    if output_path is not None:
        results.write(output_path)
    return results


def spark_schema_types(spark, schema: str, model: str) -> dict[str, str]:
    """Column -> Spark SQL type of a loaded table (for checks against the contract)."""
    return {f.name: f.dataType.simpleString() for f in spark.table(f"`{schema}`.`{model}`").schema.fields}


# ------------------------------------------------------------------------------ GX on Spark

#: Expectation classes of the project with no Spark implementation (pandas and SQL only): their
#: rules are left out of :func:`gx_counts_spark` and reported as such, never counted as passing.
GX_NO_SPARK = (
    "ExpectColumnValuesToBeValidNhsNumber",
    "ExpectColumnValuesToBeValidSctid",
    "ExpectColumnValuesToBeInSnomedValueSet",
    "ExpectColumnPairValuesScoreWithinToolRange",
)
_BATCH_MARK = "__gx_batch__"


def spark_expectation(rule, ctx):
    """The rule's GX expectation (:func:`mhsds_pipeline.quality.gx_suites.expectation_for`), its
    SQL, when it has some (``UnexpectedRowsExpectation``), transpiled to Spark SQL; None for an
    expectation with no Spark implementation (:data:`GX_NO_SPARK`)."""
    from mhsds_pipeline.quality.gx_suites import expectation_for

    expectation = expectation_for(rule, ctx)
    if type(expectation).__name__ in GX_NO_SPARK:
        return None
    query = getattr(expectation, "unexpected_rows_query", None)
    if query:
        duck = query.replace("{batch}", _BATCH_MARK).replace("{{", "{").replace("}}", "}")
        spark_sql = to_spark(duck, rule.id).replace("{", "{{").replace("}", "}}")
        expectation.unexpected_rows_query = spark_sql.replace(_BATCH_MARK, "{batch}")
    return expectation


def gx_counts_spark(spark, catalogue, ctx, tables: list[str]) -> tuple[dict[str, int | None], list[str]]:
    """GX 1.x through its Spark datasource on ``tables`` (IDB names) of ``ctx.schema``: rule id ->
    unexpected rows, and the rule ids left out (no Spark implementation). The suites are the
    project's (one expectation per catalogue rule); the table-level row count rule is left to the
    engine's table outcome. References rules read ``dq.rule_failures``: run this right after the
    schema's provider was validated, as the engine's failures are then that provider's."""
    import great_expectations as gx

    from mhsds_pipeline.quality.gx_suites import quiet_gx_logging

    quiet_gx_logging()
    context = gx.get_context(mode="ephemeral")
    datasource = context.data_sources.add_spark(name="spark_system")
    counts: dict[str, int | None] = {}
    left_out: list[str] = []
    for table in tables:
        rules = [r for r in catalogue.for_table(table) if not r.table_level]
        expectations = []
        for rule in rules:
            e = spark_expectation(rule, ctx)
            if e is None:
                left_out.append(rule.id)
            else:
                expectations.append(e)
        asset = datasource.add_dataframe_asset(name=table)
        batch = asset.add_batch_definition_whole_dataframe(f"{table}__whole").get_batch(
            batch_parameters={"dataframe": spark.table(f"`{ctx.schema}`.`{catalogue.model(table)}`")}
        )
        suite = gx.ExpectationSuite(name=f"spark__{table}", expectations=expectations)
        result = batch.validate(suite, result_format="SUMMARY")
        for er in result.results:
            rule_id = (er.expectation_config.meta or {})["rule_id"]
            res = er.result or {}
            if er.exception_info and er.exception_info.get("raised_exception"):
                counts[rule_id] = None
            elif "unexpected_count" in res:
                counts[rule_id] = int(res["unexpected_count"] or 0)
            else:
                observed = res.get("observed_value")
                counts[rule_id] = int(observed) if isinstance(observed, int | float) else None
    return counts, left_out
