"""The analytical warehouse: DuckDB file by default, PostgreSQL in production.

The landing Parquet of a period is loaded into schema ``raw_epr`` (replacing the previous
period's rows: the warehouse works on one period at a time, the DAG runs one period at a
time), dbt builds the marts from there, and the publisher reads the marts back as Arrow.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mhsds_pipeline.config import Settings
from mhsds_pipeline.epr.schema import TABLE_NAMES

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw_epr"
MART_SCHEMA_POSTGRES = "analytics"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def postgres_dsn() -> str:
    """libpq DSN for the PostgreSQL warehouse, from the same variables the dbt profile reads."""
    parts = {
        "host": os.environ.get("MHSDS_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("MHSDS_PG_PORT", "5432"),
        "user": os.environ.get("MHSDS_PG_USER", "postgres"),
        "dbname": os.environ.get("MHSDS_PG_DBNAME", "mhsds_warehouse"),
    }
    password = os.environ.get("MHSDS_PG_PASSWORD")
    if password:
        parts["password"] = password
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

        password = os.environ.get("MHSDS_PG_PASSWORD") or None
        return URL.create(
            "postgresql+psycopg2",
            username=os.environ.get("MHSDS_PG_USER", "postgres"),
            password=password,
            host=os.environ.get("MHSDS_PG_HOST", "127.0.0.1"),
            port=int(os.environ.get("MHSDS_PG_PORT", "5432")),
            database=os.environ.get("MHSDS_PG_DBNAME", "mhsds_warehouse"),
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

    if settings.warehouse_target == "duckdb":
        return _load_raw_duckdb(settings, files, reconcile)
    return _load_raw_postgres(files, reconcile)


def _load_raw_duckdb(
    settings: Settings, files: dict[str, Path], reconcile: Callable[[dict[str, int]], None]
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
        except Exception:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    return counts


def _load_raw_postgres(files: dict[str, Path], reconcile: Callable[[dict[str, int]], None]) -> dict[str, int]:
    import psycopg2

    counts: dict[str, int] = {}
    # psycopg2's connection context commits on success and rolls back on an exception
    with psycopg2.connect(postgres_dsn()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        for name, path in files.items():
            pf = pq.ParquetFile(path)
            cols = ", ".join(f"{_quote(f.name)} {_PG_TYPES[f.type]}" for f in pf.schema_arrow)
            cur.execute(f"DROP TABLE IF EXISTS {RAW_SCHEMA}.{_quote(name)}")
            cur.execute(f"CREATE TABLE {RAW_SCHEMA}.{_quote(name)} ({cols})")
            n = 0
            for batch in pf.iter_batches():
                buf = io.BytesIO()
                pacsv.write_csv(pa.Table.from_batches([batch]), buf, pacsv.WriteOptions(include_header=False))
                buf.seek(0)
                cur.copy_expert(f"COPY {RAW_SCHEMA}.{_quote(name)} FROM STDIN WITH (FORMAT csv)", buf)
                n += batch.num_rows
            counts[name] = n
        reconcile(counts)
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
