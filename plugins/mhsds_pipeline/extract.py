"""Extract one reporting period from the clinical source into the landing zone.

Each EPR table is read with a period-scoped query (the scope is pushed down to the source; the
queries are defined with the source contract, in :mod:`mhsds_pipeline.source.scope`, and
described in docs/source_contract.md), streamed in bounded chunks with a server-side cursor and
written chunk by chunk as row groups of one Parquet file, so memory does not grow with the
table. Files are written under a temporary name and renamed when complete, and rows are
ordered by key so the same source gives the same bytes.

Three promises, each because breaking it once changed a submission silently:

* **The source is never invented.** A configured SQLite file that does not exist is an error
  naming the URL; the file is opened read-only, so connecting cannot create it (SQLite would).
  Only ``mhsds generate`` (or ``make run`` on the built-in demo default) builds a synthetic EPR.
* **One snapshot.** Every table and the watermark are read in one transaction on one
  connection (REPEATABLE READ, read only, on PostgreSQL; one read transaction on SQLite), so a
  write committed during the extract cannot orphan rows between tables.
* **What lands is what loads.** ``_extract.json`` records each file's sha256 and row count;
  :func:`verify_landing` (called by the warehouse load) refuses a missing, changed or unlisted
  file instead of loading it.
* **A bad cell is a rejected record, not a lost month.** Every cell is parsed against its
  contract type (:mod:`mhsds_pipeline.source_cells`); one that does not parse lands as NULL and
  is listed in ``_cell_errors.parquet`` (table, column, problem, row key; never the value) for
  the quality gate to quarantine. An unreadable key or parent link stops the extract with
  :class:`UnreadableCellError`, naming table, column, rule and pseudonymised key.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import (
    Date,
    DateTime,
    Integer,
    Select,
    String,
    create_engine,
    event,
    select,
    type_coerce,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from mhsds_pipeline.checksums import sha256_file
from mhsds_pipeline.config import Settings, redact_url
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.privacy import pseudonymise
from mhsds_pipeline.source import schema as epr
from mhsds_pipeline.source.schema import EPR_KEYS  # also read as extract.EPR_KEYS (warehouse)
from mhsds_pipeline.source.scope import WATERMARK_COLUMNS, scoped_queries
from mhsds_pipeline.source_cells import (
    LINK_COLUMNS,
    CellError,
    describe,
    format_rule_ids,
    key_rule,
    parse_value,
    rule_for,
)

log = logging.getLogger(__name__)

#: The extract's record of a landing directory (typed as :class:`ExtractResult`).
EXTRACT_MANIFEST = "_extract.json"
#: Unreadable cells of the period (one row per cell; no values), for the quality gate.
CELL_ERRORS_FILE = "_cell_errors.parquet"
CELL_ERRORS_SCHEMA = pa.schema(
    [
        pa.field("epr_table", pa.string(), nullable=False),
        pa.field("epr_column", pa.string(), nullable=False),
        pa.field("problem", pa.string(), nullable=False),
        pa.field("key_1", pa.string()),
        pa.field("key_2", pa.string()),
        pa.field("key_3", pa.string()),
        pa.field("row_pseudonym", pa.string(), nullable=False),
    ]
)


class ExtractError(RuntimeError):
    """The source could not be read for the period."""


class UnreadableCellError(ExtractError):
    """A key or parent-link cell of an EPR row cannot be read as its contract type: the row
    cannot be quarantined, traced or cascaded, so the month stops. The message names table,
    column, rule and pseudonymised row key, never the cell's value."""


class LandingError(RuntimeError):
    """The landing zone of a period is not what the extract wrote (missing, changed or extra
    files): nothing is loaded from it; the cure is to re-run the extract."""


def arrow_type(sa_type) -> pa.DataType:
    if isinstance(sa_type, DateTime):
        return pa.timestamp("us")
    if isinstance(sa_type, Date):
        return pa.date32()
    if isinstance(sa_type, Integer):
        return pa.int64()
    if isinstance(sa_type, String):
        return pa.string()
    raise TypeError(f"No Arrow mapping for SQL type {sa_type!r}")


def arrow_schema(table_name: str) -> pa.Schema:
    table = epr.metadata.tables[table_name]
    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=True) for c in table.columns])


@dataclass
class TableExtract:
    table: str
    rows: int
    row_groups: int
    seconds: float
    path: str  # file name inside the landing directory
    sha256: str | None = None  # None only in an _extract.json written before checksums
    bytes: int | None = None
    #: this table's unreadable cells (kept in _cell_errors.parquet, not in _extract.json)
    unreadable: list[CellError] = field(default_factory=list, repr=False, compare=False)


@dataclass
class ExtractResult:
    """What the extract wrote for a period: read and written only through this class."""

    period: str
    source: str
    landing_dir: str
    tables: dict[str, TableExtract]
    source_watermark: str | None
    seconds: float
    #: unreadable cells: epr table -> column -> problem -> count (None: written before this)
    cell_errors: dict[str, dict[str, dict[str, int]]] | None = None
    cell_errors_sha256: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        for entry in d["tables"].values():
            entry.pop("unreadable", None)
        d["row_counts"] = {k: v.rows for k, v in self.tables.items()}
        return d

    @classmethod
    def from_json(cls, data: dict) -> ExtractResult:
        known = {f.name for f in fields(TableExtract)}
        tables = {
            name: TableExtract(**{k: v for k, v in entry.items() if k in known})
            for name, entry in data["tables"].items()
        }
        return cls(
            period=data["period"],
            source=data["source"],
            landing_dir=data["landing_dir"],
            tables=tables,
            source_watermark=data.get("source_watermark"),
            seconds=data.get("seconds", 0.0),
            cell_errors=data.get("cell_errors"),
            cell_errors_sha256=data.get("cell_errors_sha256"),
        )

    @property
    def row_counts(self) -> dict[str, int]:
        return {k: v.rows for k, v in self.tables.items()}


def read_extract_result(landing_dir: Path) -> ExtractResult:
    """The ``_extract.json`` of a landing directory (not verified; see :func:`verify_landing`)."""
    period = landing_dir.name
    path = landing_dir / EXTRACT_MANIFEST
    if not path.is_file():
        raise LandingError(
            f"Landing zone of {period} has no {EXTRACT_MANIFEST} ({landing_dir}): the extract did not "
            f"finish. {_rerun(period)}"
        )
    try:
        return ExtractResult.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LandingError(
            f"Landing zone of {period}: {path} is unreadable ({type(exc).__name__}). {_rerun(period)}"
        ) from None


def _rerun(period: str) -> str:
    return (
        f"Nothing was loaded; re-run the extract for {period} (`mhsds step extract --period {period}`, "
        "or clear the extract task in Airflow), which rewrites the landing directory."
    )


def verify_landing(landing_dir: Path) -> ExtractResult:
    """Check the landing directory against its ``_extract.json`` before anything is loaded.

    Every EPR table must be listed with a sha256, its file present with those bytes, and no
    other file may be there: a flipped byte in a Parquet page can change values while row
    counts still reconcile, and a file the extract did not write has no provenance.
    """
    result = read_extract_result(landing_dir)
    period = landing_dir.name
    if result.period != period:
        raise LandingError(
            f"Landing zone {landing_dir}: {EXTRACT_MANIFEST} is for period {result.period}, "
            f"not {period}. {_rerun(period)}"
        )
    problems: list[str] = []
    unknown = sorted(set(result.tables) - set(epr.TABLE_NAMES))
    if unknown:
        problems.append(f"{EXTRACT_MANIFEST} lists unknown table(s) {', '.join(unknown)}")
    expected_files = {EXTRACT_MANIFEST}
    if result.cell_errors_sha256 is not None:
        expected_files.add(CELL_ERRORS_FILE)
        path = landing_dir / CELL_ERRORS_FILE
        if not path.is_file():
            problems.append(f"{CELL_ERRORS_FILE} is missing")
        elif sha256_file(path) != result.cell_errors_sha256:
            problems.append(f"{CELL_ERRORS_FILE} has changed since the extract")
    for name in epr.TABLE_NAMES:
        file_name = f"{name}.parquet"
        expected_files.add(file_name)
        entry = result.tables.get(name)
        path = landing_dir / file_name
        if entry is None:
            problems.append(f"{file_name} is not listed in {EXTRACT_MANIFEST}")
        elif not path.is_file():
            problems.append(f"{file_name} is missing")
        elif not entry.sha256:
            problems.append(f"{file_name} has no recorded sha256 (written by an older extract)")
        else:
            actual = sha256_file(path)
            if actual != entry.sha256:
                problems.append(
                    f"{file_name} has changed since the extract (sha256 {actual[:12]}..., "
                    f"recorded {entry.sha256[:12]}...)"
                )
    unlisted = sorted(p.name for p in landing_dir.iterdir() if p.name not in expected_files)
    if unlisted:
        problems.append(f"unlisted file(s) not written by the extract: {', '.join(unlisted)}")
    if problems:
        raise LandingError(
            f"Landing zone of {period} ({landing_dir}) does not match its {EXTRACT_MANIFEST}: "
            f"{'; '.join(problems)}. {_rerun(period)}"
        )
    return result


def _raw_select(stmt: Select) -> Select:
    """The same query, with dates and timestamps fetched as the driver gives them: SQLAlchemy's
    own SQLite date parsing raises on a bad cell with the value in the message."""
    cols = [
        type_coerce(c, String()).label(c.name) if isinstance(c.type, Date | DateTime) else c
        for c in stmt.selected_columns
    ]
    return stmt.with_only_columns(*cols, maintain_column_froms=True)


def _key_text(value) -> str | None:
    if value is None:
        return None
    return value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)


def _parse_chunk(
    name: str, chunk, schema: pa.Schema, period: str, rules: dict[tuple[str, str], str]
) -> tuple[list[list], list[CellError]]:
    """Columns of typed values (bad cells NULL) and the chunk's unreadable cells."""
    keys = EPR_KEYS[name]
    structural = set(keys) | set(LINK_COLUMNS.get(name, ()))
    key_pos = [schema.get_field_index(k) for k in keys]
    columns: list[list] = [[] for _ in schema]
    errors: list[CellError] = []
    for row in chunk:
        bad: list[tuple[str, str]] = []
        for i, fld in enumerate(schema):
            value, problem = parse_value(row[i], fld.type)
            columns[i].append(value)
            if problem:
                bad.append((fld.name, problem))
        if not bad:
            continue
        for column, problem in bad:
            if column in structural:
                rule = key_rule(name, column, rules)
                raise UnreadableCellError(
                    f"Extract of {period} stopped: {name}.{column} of row {pseudonymise(name, *[row[p] for p in key_pos])} "
                    f"{describe(problem)} (rule {rule}). The column is the row's key or its link to a "
                    "parent, so the row cannot be quarantined or traced. Correct the cell in the EPR "
                    f"and re-run the extract for {period}; nothing was loaded and the last good "
                    f"outputs of {period} are untouched (the row's key is pseudonymised; IG can "
                    "re-identify it with MHSDS_PSEUDO_KEY)."
                ) from None
        key = tuple(_key_text(columns[p][-1]) for p in key_pos)
        errors.extend(CellError(name, column, problem, key) for column, problem in bad)
    return columns, errors


def _write_table(conn: Connection, name: str, stmt: Select, dest: Path, chunk_rows: int) -> TableExtract:
    """One table into one Parquet file (the landing directory is named by the period); its
    unreadable cells come back in ``TableExtract.unreadable``."""
    schema = arrow_schema(name)
    tmp = dest.with_suffix(".parquet.tmp")
    t0 = time.perf_counter()
    rows = groups = 0
    period, rules = dest.parent.name, format_rule_ids()
    cell_errors: list[CellError] = []
    writer = pq.ParquetWriter(tmp, schema, compression="zstd")
    try:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(_raw_select(stmt))
        for chunk in result.partitions(chunk_rows):
            columns, errors = _parse_chunk(name, chunk, schema, period, rules)
            cell_errors.extend(errors)
            batch = pa.record_batch(
                [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
                schema=schema,
            )
            writer.write_batch(batch, row_group_size=chunk_rows)
            rows += len(chunk)
            groups += 1
        if groups == 0:  # keep an empty file with the right schema
            writer.write_table(schema.empty_table())
    except Exception:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    digest, size = sha256_file(tmp), tmp.stat().st_size
    tmp.replace(dest)
    return TableExtract(
        name, rows, groups, round(time.perf_counter() - t0, 3), dest.name, digest, size, cell_errors
    )


def _write_cell_errors(errors: list[CellError], landing: Path) -> str:
    """``_cell_errors.parquet`` (always written, empty when every cell parsed); its sha256."""
    ordered = sorted(errors, key=lambda e: (e.epr_table, tuple(k or "" for k in e.key), e.epr_column))
    keys = [list(e.key) + [None] * (3 - len(e.key)) for e in ordered]
    table = pa.table(
        {
            "epr_table": [e.epr_table for e in ordered],
            "epr_column": [e.epr_column for e in ordered],
            "problem": [e.problem for e in ordered],
            "key_1": [k[0] for k in keys],
            "key_2": [k[1] for k in keys],
            "key_3": [k[2] for k in keys],
            "row_pseudonym": [e.pseudonym for e in ordered],
        },
        schema=CELL_ERRORS_SCHEMA,
    )
    dest = landing / CELL_ERRORS_FILE
    tmp = dest.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(dest)
    return sha256_file(dest)


def _summarise_cell_errors(
    errors: list[CellError], period: str, rules: dict[tuple[str, str], str]
) -> dict[str, dict[str, dict[str, int]]]:
    """table -> column -> problem -> count; one log line per column (counts and rules only)."""
    summary: dict[str, dict[str, dict[str, int]]] = {}
    for e in errors:
        per = summary.setdefault(e.epr_table, {}).setdefault(e.epr_column, {})
        per[e.problem] = per.get(e.problem, 0) + 1
    for table, cols in sorted(summary.items()):
        for column, problems in sorted(cols.items()):
            where = rule_for(table, column, rules)
            log.warning(
                "extract %s: %s.%s: %s unreadable cell(s) (%s) landed as NULL; the row(s) will be "
                "quarantined under %s",
                period,
                table,
                column,
                sum(problems.values()),
                ", ".join(f"{n} {p}" for p, n in sorted(problems.items())),
                ", ".join(f"{rule} ({t})" for t, _, rule in where) or "no MHSDS table (lookup)",
            )
    return summary


def source_watermark(conn: Connection, period: ReportingPeriod) -> datetime | None:
    """Latest change seen in the source up to the end of the period (deterministic per source).

    A cell that is not a timestamp is skipped (it is an unreadable cell of its row, reported
    by the extract when the row is in scope), never parsed into an error that echoes it."""
    latest: datetime | None = None
    for table_name, column in WATERMARK_COLUMNS.items():
        col = epr.metadata.tables[table_name].c[column]
        raw = type_coerce(col, String())
        stmt = select(raw).where(col.is_not(None), col < period.end_exclusive_ts).order_by(raw.desc())
        value = None
        for (cell,) in conn.execution_options(stream_results=True, yield_per=1000).execute(stmt):
            value, problem = parse_value(cell, pa.timestamp("us"))
            if problem is None:
                break
        if value is not None and (latest is None or value > latest):
            latest = value
    return latest


def source_engine(settings: Settings) -> Engine:
    """An engine that reads the clinical source and can neither create nor change it.

    SQLite: the file must exist (SQLite would silently create an empty one on connect) and is
    opened read-only (``mode=ro``); transactions are begun explicitly so that one ``BEGIN``
    covers every table (pysqlite on its own never begins a transaction for a SELECT).
    PostgreSQL: :func:`snapshot` reads in one REPEATABLE READ, read-only transaction.
    """
    shown = redact_url(settings.source_url)
    try:
        url = make_url(settings.source_url)
    except ArgumentError:
        raise ExtractError(f"MHSDS_SOURCE_URL {shown} is not a SQLAlchemy URL.") from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        return create_engine(url, hide_parameters=True)
    if backend != "sqlite":
        raise ExtractError(
            f"Clinical source {shown}: the {backend} dialect is not supported (SQLite or PostgreSQL). "
            "The extract needs a consistent snapshot of the source; see docs/source_contract.md."
        )
    path = settings.sqlite_source_path
    if path is None:
        raise ExtractError(f"Clinical source {shown} is an in-memory SQLite database: it holds no EPR.")
    if not path.is_file():
        raise ExtractError(
            f"Clinical source {shown} does not exist (no database file {path}). The pipeline reads "
            "the configured source and never creates or generates one: check MHSDS_SOURCE_URL, "
            "or build a synthetic EPR there on purpose with `mhsds generate --url <url>`."
        )
    read_only = url.set(database=path.resolve().as_uri(), query={**url.query, "mode": "ro", "uri": "true"})
    engine = create_engine(read_only, hide_parameters=True)  # no row values in error text

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


@contextmanager
def snapshot(engine: Engine, shown_url: str) -> Iterator[Connection]:
    """One connection in one read-only transaction: every read through it sees the same
    committed state of the source (PostgreSQL REPEATABLE READ takes its snapshot at the first
    statement; SQLite at the first read after BEGIN)."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise ExtractError(
            f"Cannot connect to the clinical source {shown_url}: {_driver_message(exc, engine)}"
        ) from exc
    with conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            # the first read fixes the snapshot (SQLite's BEGIN is deferred until then)
            first_read = (
                "SELECT count(*) FROM sqlite_master" if engine.dialect.name == "sqlite" else "SELECT 1"
            )
            conn.exec_driver_sql(first_read).scalar()
            yield conn


def _driver_message(exc: DBAPIError, engine: Engine) -> str:
    """The driver's own first line (e.g. 'database "x" does not exist'), password removed."""
    lines = [ln.strip() for ln in str(exc.orig).splitlines() if ln.strip()]
    text = " ".join(lines[:2]) if lines else type(exc.orig).__name__
    password = engine.url.password
    return text.replace(str(password), "***") if password else text


def _clear_landing(landing: Path) -> None:
    """Empty the period's landing directory (it holds only what the extract writes): the old
    ``_extract.json`` goes first, so a half-finished extract can never be loaded."""
    landing.mkdir(parents=True, exist_ok=True)
    (landing / EXTRACT_MANIFEST).unlink(missing_ok=True)
    for entry in landing.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def extract_period(settings: Settings, period: ReportingPeriod) -> ExtractResult:
    """Extract every EPR table for ``period`` into ``data/landing/<period>/``, from one snapshot."""
    shown = redact_url(settings.source_url)
    engine = source_engine(settings)  # refuses a missing source before anything is written
    landing = settings.landing_dir(str(period))
    t0 = time.perf_counter()
    tables: dict[str, TableExtract] = {}
    try:
        with snapshot(engine, shown) as conn:
            missing = [t for t in epr.TABLE_NAMES if not engine.dialect.has_table(conn, t)]
            if missing:
                raise ExtractError(
                    f"Clinical source {shown} has no table(s) {', '.join(missing)} (extract for {period}); "
                    "build the synthetic source with `mhsds generate` or point MHSDS_SOURCE_URL at the EPR."
                )
            _clear_landing(landing)
            rules = format_rule_ids()
            errors: list[CellError] = []
            for name, stmt in scoped_queries(period).items():
                tables[name] = _write_table(
                    conn, name, stmt, landing / f"{name}.parquet", settings.extract_chunk_rows
                )
                errors.extend(tables[name].unreadable)
                log.info("extracted %s for %s: %d rows", name, period, tables[name].rows)
            watermark = source_watermark(conn, period)
            cell_summary = _summarise_cell_errors(errors, str(period), rules)
            cell_sha = _write_cell_errors(errors, landing)
    finally:
        engine.dispose()
    result = ExtractResult(
        period=str(period),
        source=shown,
        landing_dir=str(landing),
        tables=tables,
        source_watermark=watermark.isoformat(sep=" ") if watermark else None,
        seconds=round(time.perf_counter() - t0, 3),
        cell_errors=cell_summary,
        cell_errors_sha256=cell_sha,
    )
    tmp = landing / f".{EXTRACT_MANIFEST}.tmp"
    tmp.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True))
    os.replace(tmp, landing / EXTRACT_MANIFEST)
    return result
