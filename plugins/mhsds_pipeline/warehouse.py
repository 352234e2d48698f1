"""The analytical warehouse: DuckDB file by default, PostgreSQL in production.

The landing Parquet of a period is loaded into schema ``raw_epr`` (replacing the previous
period's rows: the warehouse works on one period at a time, the DAG runs one period at a
time), dbt builds the marts from there, and the publisher reads the marts back as Arrow.

The extract's unreadable cells (``_cell_errors.parquet``) are loaded beside them as
``raw_epr._cell_errors``, one row per cell and MHSDS table it reaches, with the rule it breaks
and the row key the rule engine gives the MHSDS row (:func:`cell_error_statements`), so the
quality gate quarantines exactly those rows.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mhsds_pipeline.config import Settings
from mhsds_pipeline.settings import read_settings
from mhsds_pipeline.source.schema import TABLE_NAMES
from mhsds_pipeline.source_cells import MART_KEYS, ROUTES, format_rule_ids, rule_for

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw_epr"
#: The extract's unreadable cells as landed, and as resolved to MHSDS rows and rules.
CELL_ERRORS_LANDED = "_cell_errors_landed"
CELL_ERRORS = "_cell_errors"
#: Columns of raw_epr._cell_errors (all text); the rules catalogue's format and source_cell
#: checks look rows up by (table_name, column_name, row_key).
CELL_ERROR_COLUMNS = (
    "table_name",
    "column_name",
    "rule_id",
    "row_key",
    "epr_table",
    "epr_column",
    "problem",
    "row_pseudonym",
)
MART_SCHEMA_POSTGRES = "analytics"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def postgres_dsn() -> str:
    """libpq DSN for the PostgreSQL warehouse, from the same variables the dbt profile reads
    (validated in :mod:`mhsds_pipeline.settings`: a bad MHSDS_PG_PORT is a ConfigurationError)."""
    env = read_settings()
    parts = {"host": env.pg_host, "port": str(env.pg_port), "user": env.pg_user, "dbname": env.pg_dbname}
    if env.pg_password:
        parts["password"] = env.pg_password.get_secret_value()
    return " ".join(f"{k}={v}" for k, v in parts.items())


def mart_schema(settings: Settings) -> str:
    """Schema holding the MHSDS marts (dbt's ``analytics``; DuckDB names it the same)."""
    return MART_SCHEMA_POSTGRES


def sqlalchemy_url(settings: Settings) -> str:
    """SQLAlchemy URL of the warehouse, for SQL pushdown (GX data source, DQ rules, DQMI)."""
    if settings.warehouse_target == "duckdb":
        return f"duckdb:///{settings.warehouse_path}"
    if settings.warehouse_target == "postgres":
        from sqlalchemy.engine import URL

        env = read_settings()
        return URL.create(
            "postgresql+psycopg2",
            username=env.pg_user,
            password=env.pg_password.get_secret_value() if env.pg_password else None,
            host=env.pg_host,
            port=env.pg_port,
            database=env.pg_dbname,
        ).render_as_string(hide_password=False)
    raise ValueError(f"Unknown warehouse target {settings.warehouse_target!r} (duckdb or postgres)")


@contextmanager
def duckdb_connection(settings: Settings, read_only: bool = False):
    import duckdb

    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path), read_only=read_only)
    try:
        yield con
    finally:
        con.close()


_PG_TYPES = {
    pa.string(): "text",
    pa.date32(): "date",
    pa.timestamp("us"): "timestamp",
    pa.int64(): "bigint",
}


def load_raw(settings: Settings, landing_dir: Path) -> dict[str, int]:
    """Replace ``raw_epr`` with the period's landing files; returns row counts per table.

    The landing directory is verified against its ``_extract.json`` (sha256 of every file, no
    file missing or unlisted) before the warehouse is touched, and the loaded row counts are
    checked against the extract's before the load commits: a corrupted landing zone fails here,
    naming file and period, and the previous ``raw_epr`` stays as it was.
    """
    from mhsds_pipeline.extract import LandingError, verify_landing

    if settings.warehouse_target not in ("duckdb", "postgres"):
        raise ValueError(f"Unknown warehouse target {settings.warehouse_target!r} (duckdb or postgres)")
    extracted = verify_landing(landing_dir)
    files = {name: landing_dir / f"{name}.parquet" for name in TABLE_NAMES}

    def reconcile(counts: dict[str, int]) -> None:
        expected = extracted.row_counts
        differ = [
            f"{t} loaded {n} rows, extracted {expected[t]}" for t, n in counts.items() if n != expected[t]
        ]
        if differ:
            raise LandingError(
                f"Landing zone of {extracted.period}: {'; '.join(differ)}; nothing was loaded. "
                f"The files changed while loading: re-run the extract for {extracted.period}."
            )

    cells = landing_dir / "_cell_errors.parquet"
    cell_file = cells if extracted.cell_errors_sha256 is not None and cells.is_file() else None
    if settings.warehouse_target == "duckdb":
        return _load_raw_duckdb(settings, files, reconcile, cell_file)
    return _load_raw_postgres(files, reconcile, cell_file)


def create_cell_errors_sql() -> list[str]:
    """``raw_epr._cell_errors``, empty (both dialects): it exists whenever the marts do."""
    cols = ", ".join(f"{c} VARCHAR" for c in CELL_ERROR_COLUMNS)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}",
        f"DROP TABLE IF EXISTS {RAW_SCHEMA}.{_quote(CELL_ERRORS)}",
        f"CREATE TABLE {RAW_SCHEMA}.{_quote(CELL_ERRORS)} ({cols})",
    ]


def ensure_cell_errors_sql() -> list[str]:
    """``raw_epr._cell_errors`` if missing (the rules' format checks read it): empty when the
    raw schema was loaded another way (a fixture, an older load)."""
    cols = ", ".join(f"{c} VARCHAR" for c in CELL_ERROR_COLUMNS)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}",
        f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{_quote(CELL_ERRORS)} ({cols})",
    ]


def _lit(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _key_part(column: str, kind: str) -> str:
    """A key column as the marts hold it (staging trims text, casts dates and timestamps),
    rendered as the rule engine renders keys (``SqlContext.key_expr``)."""
    raw = f"r.{_quote(column)}"
    typed = {
        "s": f"TRIM(CAST({raw} AS VARCHAR))",
        "d": f"CAST({raw} AS DATE)",
        "ts": f"CAST({raw} AS TIMESTAMP)",
        "t": f"CAST(CAST({raw} AS TIMESTAMP) AS TIME)",
    }
    return f"COALESCE(CAST({typed[kind]} AS VARCHAR), '')"


def cell_error_statements(pairs: list[tuple[str, str]]) -> list[str]:
    """INSERTs filling ``raw_epr._cell_errors`` from the landed cells, for the (EPR table,
    column) pairs that have any: one row per cell and MHSDS table the row becomes, with the
    rule it breaks (v6 format rule of the column, else the table's LOCAL_*_SOURCE_CELL) and the
    MHSDS row key, found by joining the cell to its EPR row on the EPR key."""
    from mhsds_pipeline.extract import EPR_KEYS

    rules = format_rule_ids()
    out = []
    for epr_table, epr_column in pairs:
        keys = EPR_KEYS[epr_table]
        match = " AND ".join(
            f"CAST(r.{_quote(k)} AS VARCHAR) IS NOT DISTINCT FROM e.key_{i}" for i, k in enumerate(keys, 1)
        )
        for mhsds_table, mhsds_column, rule_id in rule_for(epr_table, epr_column, rules):
            parts = [_key_part(col, kind) for _, col, kind in MART_KEYS[mhsds_table]]
            row_key = parts[0] if len(parts) == 1 else "(" + " || '|' || ".join(parts) + ")"
            route = f" AND {ROUTES[mhsds_table]}" if mhsds_table in ROUTES else ""
            out.append(
                f"INSERT INTO {RAW_SCHEMA}.{_quote(CELL_ERRORS)} ({', '.join(CELL_ERROR_COLUMNS)}) "
                f"SELECT DISTINCT {_lit(mhsds_table)}, {_lit(mhsds_column)}, {_lit(rule_id)}, {row_key}, "
                f"e.epr_table, e.epr_column, e.problem, e.row_pseudonym "
                f"FROM {RAW_SCHEMA}.{_quote(CELL_ERRORS_LANDED)} e "
                f"JOIN {RAW_SCHEMA}.{_quote(epr_table)} r ON {match} "
                f"WHERE e.epr_table = {_lit(epr_table)} AND e.epr_column = {_lit(epr_column)}{route}"
            )
    return out


def _cell_pairs(path: Path | None) -> list[tuple[str, str]]:
    if path is None:
        return []
    table = pq.read_table(path, columns=["epr_table", "epr_column"])
    return sorted(set(zip(table["epr_table"].to_pylist(), table["epr_column"].to_pylist(), strict=True)))


def _load_raw_duckdb(
    settings: Settings,
    files: dict[str, Path],
    reconcile: Callable[[dict[str, int]], None],
    cell_file: Path | None = None,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    with duckdb_connection(settings) as con:
        con.execute("BEGIN")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        for name, path in files.items():
            con.execute(
                f"CREATE OR REPLACE TABLE {RAW_SCHEMA}.{_quote(name)} AS SELECT * FROM read_parquet(?)",
                [str(path)],
            )
            counts[name] = con.execute(f"SELECT count(*) FROM {RAW_SCHEMA}.{_quote(name)}").fetchone()[0]
        try:
            reconcile(counts)
            for sql in create_cell_errors_sql():
                con.execute(sql)
            con.execute(f"DROP TABLE IF EXISTS {RAW_SCHEMA}.{_quote(CELL_ERRORS_LANDED)}")
            if cell_file is not None:
                con.execute(
                    f"CREATE TABLE {RAW_SCHEMA}.{_quote(CELL_ERRORS_LANDED)} AS SELECT * FROM read_parquet(?)",
                    [str(cell_file)],
                )
                for sql in cell_error_statements(_cell_pairs(cell_file)):
                    con.execute(sql)
        except Exception:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    return counts


def _copy_parquet_postgres(cur, relation: str, path: Path) -> int:
    pf = pq.ParquetFile(path)
    cols = ", ".join(f"{_quote(f.name)} {_PG_TYPES[f.type]}" for f in pf.schema_arrow)
    cur.execute(f"DROP TABLE IF EXISTS {relation}")
    cur.execute(f"CREATE TABLE {relation} ({cols})")
    n = 0
    for batch in pf.iter_batches():
        buf = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch]), buf, pacsv.WriteOptions(include_header=False))
        buf.seek(0)
        cur.copy_expert(f"COPY {relation} FROM STDIN WITH (FORMAT csv)", buf)
        n += batch.num_rows
    return n


def _load_raw_postgres(
    files: dict[str, Path], reconcile: Callable[[dict[str, int]], None], cell_file: Path | None = None
) -> dict[str, int]:
    import psycopg2

    counts: dict[str, int] = {}
    # psycopg2's connection context commits on success and rolls back on an exception
    with psycopg2.connect(postgres_dsn()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        for name, path in files.items():
            counts[name] = _copy_parquet_postgres(cur, f"{RAW_SCHEMA}.{_quote(name)}", path)
        reconcile(counts)
        for sql in create_cell_errors_sql():
            cur.execute(sql)
        cur.execute(f"DROP TABLE IF EXISTS {RAW_SCHEMA}.{_quote(CELL_ERRORS_LANDED)}")
        if cell_file is not None:
            _copy_parquet_postgres(cur, f"{RAW_SCHEMA}.{_quote(CELL_ERRORS_LANDED)}", cell_file)
            for sql in cell_error_statements(_cell_pairs(cell_file)):
                cur.execute(sql)
    return counts


def read_mart(settings: Settings, model: str, relation: str | None = None) -> pa.Table:
    """A built mart as an Arrow table (columns as built; the publisher casts to the contract).

    ``relation`` reads another relation instead (already quoted, e.g. the quality gate's
    ``"dq"."mhs101_referral__submit"`` view of the rows that may be submitted).
    """
    if settings.warehouse_target == "duckdb":
        with duckdb_connection(settings, read_only=True) as con:
            source = relation or f"{_duckdb_mart_schema(con, model)}.{_quote(model)}"
            return con.sql(f"SELECT * FROM {source}").to_arrow_table()
    if settings.warehouse_target == "postgres":
        import pandas as pd
        import psycopg2

        source = relation or f"{MART_SCHEMA_POSTGRES}.{_quote(model)}"
        with psycopg2.connect(postgres_dsn()) as conn:
            df = pd.read_sql_query(f"SELECT * FROM {source}", conn)
        return pa.Table.from_pandas(df, preserve_index=False)
    raise ValueError(f"Unknown warehouse target {settings.warehouse_target!r}")


def _duckdb_mart_schema(con, model: str) -> str:
    rows = con.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = ? ORDER BY table_schema",
        [model],
    ).fetchall()
    schemas = [r[0] for r in rows if r[0] != RAW_SCHEMA]
    if not schemas:
        raise LookupError(f"Mart {model!r} is not in the warehouse; did dbt build run for this period?")
    return _quote(schemas[0])
