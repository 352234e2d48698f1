"""Bulk loading of generated frames into the EPR database (SQLite or PostgreSQL).

Tables are (re)created from ``schema.metadata`` without their indexes, filled, then indexed:
building an index once over the loaded rows is much cheaper than maintaining it per insert.

* SQLite: ``executemany`` of pre-formatted tuples through the SQLAlchemy connection, in
  batches, with the journal in memory and ``synchronous=OFF`` during the load (a half-written
  synthetic file is simply regenerated).
* PostgreSQL: ``COPY ... FROM STDIN (FORMAT csv)`` through psycopg2 ``copy_expert`` from an
  in-memory CSV buffer per batch.

Values are written as text in the exact forms SQLAlchemy itself stores and binds for SQLite
(``YYYY-MM-DD HH:MM:SS.ffffff`` for DateTime, ``YYYY-MM-DD`` for Date), so the extract's
bound-parameter comparisons (which are string comparisons in SQLite) behave correctly.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from sqlalchemy import Date, DateTime, Integer, create_engine, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.schema import CreateTable

from mhsds_pipeline.source import schema
from mhsds_pipeline.synthetic import trust
from mhsds_pipeline.synthetic.frames import ID_FORMATS, Frame, format_ids

BATCH_ROWS = 100_000
_TEAM_IDS = np.array([t.team_id for t in trust.TEAMS])
_WARD_CODES = np.array([w.ward_code for w in trust.WARDS])


def _to_list(values: np.ndarray, null: np.ndarray | None) -> list:
    out = values.astype(object)
    if null is not None and null.any():
        out[null] = None
    return out.tolist()


def column_values(name: str, sa_type, arr: np.ndarray) -> list:
    """One column of a frame as Python values ready for the DB-API (None = NULL)."""
    if name in ID_FORMATS and arr.dtype.kind in "iu":
        text = format_ids(name, arr)
        return _to_list(text, text == "")
    if name == "team_id" and arr.dtype.kind in "iu":
        return _TEAM_IDS[arr].tolist()
    if name == "ward_code" and arr.dtype.kind in "iu":
        return _WARD_CODES[arr].tolist()
    if isinstance(sa_type, DateTime):
        text = np.datetime_as_string(arr.astype("datetime64[s]"), unit="s")
        text = np.strings.add(np.strings.replace(text, "T", " "), ".000000")
        return _to_list(text, np.isnat(arr))
    if isinstance(sa_type, Date):
        text = np.datetime_as_string(arr.astype("datetime64[D]"), unit="D")
        return _to_list(text, np.isnat(arr))
    if isinstance(sa_type, Integer):
        return _to_list(arr.astype(np.int64), arr < 0)
    return _to_list(arr, arr == "")


def frame_rows(table_name: str, frame: Frame) -> tuple[list[str], list[tuple]]:
    table = schema.metadata.tables[table_name]
    names = [c.name for c in table.columns]
    cols = []
    for c in table.columns:
        values = column_values(c.name, c.type, frame[c.name])
        raw = frame.get(f"_raw_{c.name}")  # planted text the typed frame cannot hold (defects.py)
        if raw is not None:
            values = [v if r is None else r for v, r in zip(values, raw, strict=True)]
        cols.append(values)
    return names, list(zip(*cols, strict=True))


class Loader:
    """Writes frames into a freshly created EPR schema at ``url``."""

    def __init__(self, url: str):
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"EPR source must be SQLite or PostgreSQL, not {self.dialect}")
        self.engine: Engine | None = None
        self.rows: dict[str, int] = {name: 0 for name in schema.TABLE_NAMES}

    # --- lifecycle -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop the EPR tables (or the whole file, for a SQLite file holding only them) and create
        them again without indexes."""
        if self.dialect == "sqlite" and self.url.database not in (None, "", ":memory:"):
            path = Path(self.url.database)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                probe = create_engine(self.url)
                try:
                    names = set(inspect(probe).get_table_names())
                finally:
                    probe.dispose()
                if names <= set(schema.TABLE_NAMES):
                    for suffix in ("", "-journal", "-wal", "-shm"):
                        Path(str(path) + suffix).unlink(missing_ok=True)
        self.engine = create_engine(self.url)
        schema.metadata.drop_all(self.engine)
        with self.engine.begin() as conn:
            for table in schema.metadata.sorted_tables:
                conn.execute(CreateTable(table))
        self.conn = self.engine.connect()
        if self.dialect == "sqlite":
            for pragma in (
                "journal_mode=MEMORY",
                "synchronous=OFF",
                "cache_size=-262144",
                "temp_store=MEMORY",
            ):
                self.conn.exec_driver_sql(f"PRAGMA {pragma}")

    def finish(self) -> None:
        """Create the indexes, refresh planner statistics and close."""
        assert self.engine is not None
        self.conn.commit()
        for table in schema.metadata.sorted_tables:
            for index in sorted(table.indexes, key=lambda i: i.name or ""):
                index.create(self.conn)
        self.conn.commit()
        self.conn.exec_driver_sql("ANALYZE")
        self.conn.commit()
        if self.dialect == "sqlite":
            self.conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
        self.conn.close()
        self.engine.dispose()

    def abort(self) -> None:
        if self.engine is not None:
            try:
                self.conn.rollback()
                self.conn.close()
            finally:
                self.engine.dispose()

    # --- writing -------------------------------------------------------------------------------
    def write(self, table_name: str, frame: Frame) -> int:
        """Append the rows of ``frame`` to ``table_name``; returns the number of rows."""
        names, rows = frame_rows(table_name, frame)
        if not rows:
            return 0
        if self.dialect == "sqlite":
            sql = f"INSERT INTO {table_name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            for i in range(0, len(rows), BATCH_ROWS):
                self.conn.exec_driver_sql(sql, rows[i : i + BATCH_ROWS])
        else:
            raw = self.conn.connection.dbapi_connection
            sql = f"COPY {table_name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)"
            with raw.cursor() as cur:
                for i in range(0, len(rows), BATCH_ROWS):
                    buf = io.StringIO()
                    csv.writer(buf, lineterminator="\n").writerows(rows[i : i + BATCH_ROWS])
                    buf.seek(0)
                    cur.copy_expert(sql, buf)
            raw.commit()
        if self.dialect == "sqlite":
            self.conn.commit()
        self.rows[table_name] += len(rows)
        return len(rows)
