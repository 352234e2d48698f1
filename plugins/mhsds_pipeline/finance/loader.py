"""Finance extract -> warehouse schema ``raw_finance`` -> dbt finance models -> marts.

The finance marts run in their own dbt invocation, after the MHSDS month has been published:

    dbt build --select tag:finance --full-refresh --vars '{"finance_enabled": true}'

Every finance node (seeds, sources, models, tests) is disabled unless ``finance_enabled`` is
true, so the monthly ``dbt build`` (no selector) neither needs ``raw_finance`` nor builds the
finance marts. ``raw_finance`` is replaced as a whole on every run (like ``raw_epr``): the
extract carries all the years the MHIS position needs (FY-2 outturn to FY year to date).
"""

from __future__ import annotations

import io
import logging
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow as pa

from mhsds_pipeline.config import Settings
from mhsds_pipeline.finance.config import FinanceSettings
from mhsds_pipeline.finance.schema import SCHEMAS, SQL_TYPES, TABLE_NAMES

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw_finance"
DBT_SELECTOR = "tag:finance"
MARTS = ("mhis_spend_monthly", "mhis_outturn", "mhis_allocation")


class FinanceSourceError(RuntimeError):
    """The finance extract is missing or malformed (say which table and what to do)."""


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _conform(name: str, table: pa.Table, where: str) -> pa.Table:
    schema = SCHEMAS[name]
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise FinanceSourceError(f"finance table {name} at {where} lacks column(s) {missing}")
    try:
        return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FinanceSourceError(
            f"finance table {name} at {where}: a column has the wrong type ({exc})"
        ) from exc


def read_source(fin: FinanceSettings) -> dict[str, pa.Table]:
    """The four finance tables from files or a database, cast to the extract schemas."""
    if fin.source_is_url:
        return _read_database(fin.source, fin.source_schema)
    return read_files(Path(fin.source))


def read_files(directory: Path) -> dict[str, pa.Table]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    tables = {}
    for name in TABLE_NAMES:
        parquet, csv = directory / f"{name}.parquet", directory / f"{name}.csv"
        if parquet.exists():
            raw = pq.read_table(parquet)
        elif csv.exists():
            types = {f.name: f.type for f in SCHEMAS[name]}
            raw = pacsv.read_csv(
                csv,
                convert_options=pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=True, null_values=[""]
                ),
            )
        else:
            raise FinanceSourceError(
                f"finance extract table {name} not found in {directory} (expected {name}.parquet or "
                f"{name}.csv). Point MHSDS_FINANCE_SOURCE at the extract, or generate the synthetic "
                "one with `python -m mhsds_pipeline.finance.generator`."
            )
        tables[name] = _conform(name, raw, str(directory))
    return tables


def _read_database(url: str, schema: str | None) -> dict[str, pa.Table]:
    import sqlalchemy as sa

    from mhsds_pipeline.config import redact_url

    engine = sa.create_engine(url)
    tables = {}
    try:
        with engine.connect() as conn:
            for name in TABLE_NAMES:
                cols = ", ".join(_quote(c) for c in SCHEMAS[name].names)
                qualified = f"{_quote(schema)}.{_quote(name)}" if schema else _quote(name)
                try:
                    result = conn.execute(sa.text(f"SELECT {cols} FROM {qualified}"))
                except sa.exc.DBAPIError as exc:
                    raise FinanceSourceError(
                        f"finance table {name} could not be read at {redact_url(url)}: {exc.orig}"
                    ) from exc
                rows = result.fetchall()
                data = {c: [r[i] for r in rows] for i, c in enumerate(SCHEMAS[name].names)}
                raw = pa.table(
                    {f.name: pa.array(_typed(data[f.name], f.type), type=f.type) for f in SCHEMAS[name]}
                )
                tables[name] = _conform(name, raw, redact_url(url))
    finally:
        engine.dispose()
    return tables


def _typed(values: list, arrow_type: pa.DataType) -> list:
    """Database values for an Arrow column: drivers without a decimal type (SQLite) give floats
    for NUMERIC, which are taken at their printed value and rounded to the column's scale."""
    if not pa.types.is_decimal(arrow_type):
        return values
    quantum = Decimal(1).scaleb(-arrow_type.scale)
    return [
        None
        if v is None
        else (v if isinstance(v, Decimal) else Decimal(str(v))).quantize(quantum, ROUND_HALF_UP)
        for v in values
    ]


def load_raw_finance(settings: Settings, tables: dict[str, pa.Table]) -> dict[str, int]:
    """Replace schema ``raw_finance`` in the warehouse with the extract; returns row counts."""
    return load_schema(settings, RAW_SCHEMA, tables)


#: Arrow type -> SQL type of a loaded column (finance money and percentages, MHSDS dates/times).
_LOAD_SQL_TYPES = {
    **SQL_TYPES,
    pa.date32(): "date",
    pa.time64("us"): "time",
    pa.timestamp("us"): "timestamp",
    pa.int64(): "bigint",
    pa.int32(): "integer",
}


def load_schema(settings: Settings, schema: str, tables: dict[str, pa.Table]) -> dict[str, int]:
    """Replace the tables of ``schema`` in the warehouse (DuckDB or PostgreSQL) with ``tables``,
    in one transaction; returns row counts."""
    if settings.warehouse_target == "duckdb":
        from mhsds_pipeline.warehouse import duckdb_connection

        with duckdb_connection(settings) as con:
            con.execute("BEGIN")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
            for name, table in tables.items():
                con.register("load_batch", table)
                con.execute(
                    f"CREATE OR REPLACE TABLE {_quote(schema)}.{_quote(name)} AS SELECT * FROM load_batch"
                )
                con.unregister("load_batch")
            con.execute("COMMIT")
        return {name: t.num_rows for name, t in tables.items()}
    if settings.warehouse_target == "postgres":
        return _load_postgres(schema, tables)
    raise ValueError(f"Unknown warehouse target {settings.warehouse_target!r} (duckdb or postgres)")


def _load_postgres(schema: str, tables: dict[str, pa.Table]) -> dict[str, int]:
    import psycopg2
    import pyarrow.csv as pacsv

    from mhsds_pipeline.warehouse import postgres_dsn

    with psycopg2.connect(postgres_dsn()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
        for name, table in tables.items():
            cols = ", ".join(f"{_quote(f.name)} {_LOAD_SQL_TYPES[f.type]}" for f in table.schema)
            cur.execute(f"DROP TABLE IF EXISTS {_quote(schema)}.{_quote(name)}")
            cur.execute(f"CREATE TABLE {_quote(schema)}.{_quote(name)} ({cols})")
            buf = io.BytesIO()
            pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
            buf.seek(0)
            cur.copy_expert(f"COPY {_quote(schema)}.{_quote(name)} FROM STDIN WITH (FORMAT csv)", buf)
    return {name: t.num_rows for name, t in tables.items()}


def build_finance_marts(settings: Settings, period: str) -> dict:
    """``dbt build`` of the finance nodes only; raises TransformError naming each failed node."""
    from mhsds_pipeline.transform import TransformError, run_dbt

    work_dir = settings.data_dir / "dbt" / "finance" / period
    t0 = time.perf_counter()
    # --full-refresh recreates the finance seeds, so a seed that gains a column (a new version of
    # a mapping) loads instead of failing against last run's table; the marts are tables anyway.
    args = ["build", "--select", DBT_SELECTOR, "--full-refresh"]
    ok, nodes = run_dbt(settings, args, {"finance_enabled": True}, work_dir)
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status] = counts.get(n.status, 0) + 1
    if not ok or not nodes:
        failed = [
            f"{n.unique_id} [{n.check_id}] ({n.status}: {n.message})"
            for n in nodes
            if n.status in ("error", "fail")
        ]
        raise TransformError(
            f"dbt build of the finance models failed for MHIS {period}: "
            + "; ".join(failed or ["no finance nodes ran - see the dbt logs"])
            + f". Fix the finance extract or the seeds under dbt_project/seeds/finance. Logs: {work_dir / 'logs'}"
        )
    return {"counts": counts, "seconds": round(time.perf_counter() - t0, 3)}


def read_marts(settings: Settings) -> dict[str, pa.Table]:
    from mhsds_pipeline.warehouse import read_mart

    return {name: read_mart(settings, name) for name in MARTS}
