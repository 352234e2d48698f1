"""Load a provider's submission package (IDB CSV files) into a warehouse schema of its own.

An ICB or NHS England's data-quality team receives providers' submission files, not their EPRs.
The files are read in the package dialect of :mod:`mhsds_pipeline.submission.idb` (NULL is an
empty unquoted field, the empty string a quoted one; one formula-escape apostrophe removed) and
typed by the dbt contracts, so the rule engine reads ``<schema>.<relation>`` exactly as it reads
the marts. The IDB name -> relation mapping is the contracts' (``TableSpec.model``).

Files from elsewhere load too: the same file and header names, columns in any order, optional
tables missing (loaded as empty tables, so rules that join across tables still run).

What is refused, and what is quarantined:

* **Refused** (:class:`PackageError`, naming the file, line and column): a ``.csv`` file that is
  no contracted IDB table, a header with an unknown, duplicated or missing column, no
  ``MHS000Header.csv``, a header table without exactly one readable row.
* **Quarantined** (:class:`QuarantinedRow`, kept in :class:`LoadedPackage` and in
  ``<schema>._quarantine``, never dropped silently): a row with the wrong number of fields, or a
  cell that does not parse as its contract type. The reason names the problem, never the value
  (values can be identifiers). Line numbers are physical lines: the package format never holds
  a line break inside a value, so a record is one line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.rules import DBT_PROJECT
from mhsds_pipeline.submission.idb import TableSpec, read_options, table_specs, unescape_column

HEADER_TABLE = "MHS000Header"
QUARANTINE_RELATION = "_quarantine"

_PROBLEM = {
    "date": "is not a date (YYYY-MM-DD)",
    "timestamp": "is not a timestamp (YYYY-MM-DDTHH:MM:SS)",
    "time": "is not a time (HH:MM:SS)",
    "integer": "is not a whole number in range",
    "bigint": "is not a whole number in range",
}


class PackageError(ValueError):
    """A package that cannot be loaded as a whole; the message says which file, line and column."""


@dataclass(frozen=True)
class QuarantinedRow:
    """One row that could not be read: where it is and why, never what it holds."""

    idb_table: str
    file: str
    line: int | None  # physical line in the file (the header is line 1)
    column: str | None  # None: the row as a whole (wrong number of fields)
    reason: str


@dataclass
class LoadedPackage:
    package_dir: Path
    schema: str
    org_id_provider: str
    org_id_submit: str
    period: ReportingPeriod
    rows: dict[str, int]  # IDB table -> rows loaded (0 for a table with no file)
    missing: tuple[str, ...]  # IDB tables with no file (loaded empty)
    quarantined: list[QuarantinedRow] = field(default_factory=list)

    def quarantine_counts(self) -> dict[str, int]:
        """IDB table -> rows quarantined while reading."""
        out: dict[str, int] = {}
        for row in self.quarantined:
            out[row.idb_table] = out.get(row.idb_table, 0) + 1
        return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_header_names(path: Path) -> list[str]:
    with Path(path).open(encoding="utf-8-sig", newline="") as f:
        return next(csv.reader(f), [])


def _check_columns(path: Path, spec: TableSpec, names: list[str]) -> None:
    known = set(spec.column_names)
    for i, name in enumerate(names, start=1):
        if name not in known:
            raise PackageError(
                f"{path.name}: line 1, column {i}: {name!r} is not a column of {spec.idb_table} "
                f"(expected the IDB column names {spec.column_names})"
            )
        if names.index(name) != i - 1:
            raise PackageError(f"{path.name}: line 1, column {i}: column {name!r} appears twice")
    absent = [c for c in spec.column_names if c not in names]
    if absent:
        raise PackageError(f"{path.name}: line 1: the header lacks the {spec.idb_table} column(s) {absent}")


def _parse(text: pa.ChunkedArray, data_type: str, arrow: pa.DataType) -> pa.Array:
    if data_type == "time":
        stamps = pc.binary_join_element_wise("1970-01-01T", text, "")
        return pc.cast(pc.cast(stamps, pa.timestamp("us")), arrow)
    return pc.cast(text, arrow)


def _typed_column(text: pa.ChunkedArray, data_type: str, arrow: pa.DataType) -> tuple[pa.Array, list[int]]:
    """The column in its contract type, and the row indexes whose cell does not parse (NULL)."""
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    try:
        return _parse(text, data_type, arrow), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values, bad = [], []
    for i, value in enumerate(text.to_pylist()):  # the error path only: find the cells
        try:
            values.append(_parse(pa.array([value], pa.string()), data_type, arrow)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values.append(None)
            bad.append(i)
    return pa.array(values, arrow), bad


def _non_blank_lines(path: Path) -> list[int]:
    """Physical line numbers (1-based) of the file's non-blank lines, the header's first."""
    with Path(path).open("rb") as f:
        return [n for n, line in enumerate(f, start=1) if line.strip(b"\r\n")]


def read_table_file(path: Path, spec: TableSpec) -> tuple[pa.Table, list[QuarantinedRow]]:
    """One table file as its contract-typed Arrow table (IDB column order) and its bad rows."""
    names = read_header_names(path)
    _check_columns(path, spec, names)
    ragged: list[QuarantinedRow] = []

    def on_invalid(row) -> str:
        ragged.append(
            QuarantinedRow(
                spec.idb_table,
                path.name,
                row.number,  # pyarrow counts non-blank lines; made physical below
                None,
                f"has {row.actual_columns} field(s) where the header has {row.expected_columns}",
            )
        )
        return "skip"

    options = read_options(names, {n: pa.string() for n in names})
    parse = options["parse_options"]
    options["parse_options"] = pacsv.ParseOptions(
        delimiter=parse.delimiter,
        newlines_in_values=False,
        invalid_row_handler=on_invalid,
    )
    options["read_options"].use_threads = False  # row numbers for the handler
    options["read_options"].encoding = "utf-8"
    try:
        text = pacsv.read_csv(str(path), **options)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise PackageError(f"{path.name}: cannot be read as the package's CSV dialect: {exc}") from exc
    # pyarrow skips blank lines and numbers the others: map its numbers to physical lines
    physical = _non_blank_lines(path)
    ragged = [replace(r, line=physical[r.line - 1] if r.line else None) for r in ragged]
    skipped = {r.line for r in ragged}
    lines = [n for n in physical[1:] if n not in skipped]

    columns, bad_rows = [], {}
    for c in spec.columns:
        col = text.column(c.name)
        if c.data_type == "varchar":
            columns.append(unescape_column(col))
            continue
        typed, bad = _typed_column(col, c.data_type, c.arrow_type)
        columns.append(typed)
        for i in bad:
            bad_rows.setdefault(i, c.name)
    table = pa.Table.from_arrays(columns, schema=spec.arrow_schema)
    quarantined = ragged + [
        QuarantinedRow(
            spec.idb_table,
            path.name,
            lines[i],
            column,
            f"{column} {_PROBLEM.get(dict((c.name, c.data_type) for c in spec.columns)[column], 'is unreadable')}",
        )
        for i, column in sorted(bad_rows.items())
    ]
    if bad_rows:
        keep = pa.array([i not in bad_rows for i in range(table.num_rows)])
        table = table.filter(keep)
    return table, sorted(quarantined, key=lambda r: (r.line or 0, r.column or ""))


def _header_facts(table: pa.Table, path: Path) -> tuple[str, str, ReportingPeriod]:
    if table.num_rows != 1:
        raise PackageError(
            f"{path.name}: the header table must hold exactly one readable row, not {table.num_rows}"
        )
    row = table.to_pylist()[0]
    provider, start = row["OrgIDProvider"], row["ReportingPeriodStartDate"]
    if not provider or start is None:
        raise PackageError(f"{path.name}: line 2: OrgIDProvider and ReportingPeriodStartDate must be given")
    return provider, row["OrgIDSubmit"] or provider, ReportingPeriod.parse(start.strftime("%Y-%m"))


def package_header(
    package_dir: Path, dbt_project_dir: Path = DBT_PROJECT
) -> tuple[str, str, ReportingPeriod]:
    """(OrgIDProvider, OrgIDSubmit, reporting period) from the package's ``MHS000Header.csv``."""
    path = Path(package_dir) / f"{HEADER_TABLE}.csv"
    if not path.exists():
        raise PackageError(f"{package_dir}: no {path.name}; the provider and period are read from it")
    spec = next(s for s in table_specs(Path(dbt_project_dir)) if s.idb_table == HEADER_TABLE)
    return _header_facts(read_table_file(path, spec)[0], path)


def _create(raw, schema: str, spec: TableSpec, table: pa.Table) -> None:
    cols = ", ".join(f"{_q(c.name)} {c.data_type.upper()}" for c in spec.columns)
    raw.execute(f"DROP TABLE IF EXISTS {_q(schema)}.{_q(spec.model)}")
    raw.execute(f"CREATE TABLE {_q(schema)}.{_q(spec.model)} ({cols})")
    if table.num_rows:
        raw.register("_incoming", table)
        try:
            raw.execute(f"INSERT INTO {_q(schema)}.{_q(spec.model)} SELECT * FROM _incoming")
        finally:
            raw.unregister("_incoming")


def load_package(
    package_dir: Path, engine: sa.Engine, schema: str, dbt_project_dir: Path = DBT_PROJECT
) -> LoadedPackage:
    """Load every table file of ``package_dir`` into DuckDB ``schema`` with the contract types."""
    package_dir = Path(package_dir)
    specs = {s.file_name: s for s in table_specs(Path(dbt_project_dir))}
    files = sorted(p for p in package_dir.iterdir() if p.suffix.lower() == ".csv")
    unknown = [p.name for p in files if p.name not in specs]
    if unknown:
        raise PackageError(
            f"{package_dir}: {unknown} name no MHSDS v6 IDB table; a package holds only "
            "<IDB table>.csv files (e.g. MHS101Referral.csv). Rename or remove them."
        )
    by_name = {p.name: p for p in files}
    header_file = f"{HEADER_TABLE}.csv"
    if header_file not in by_name:
        raise PackageError(f"{package_dir}: no {header_file}; the provider and period are read from it")
    loaded: dict[str, tuple[TableSpec, pa.Table]] = {}
    quarantined: list[QuarantinedRow] = []
    for name, spec in specs.items():
        if name in by_name:
            table, bad = read_table_file(by_name[name], spec)
            quarantined.extend(bad)
        else:
            table = spec.arrow_schema.empty_table()
        loaded[spec.idb_table] = (spec, table)
    provider, submit, period = _header_facts(loaded[HEADER_TABLE][1], by_name[header_file])
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
        for spec, table in loaded.values():
            _create(raw, schema, spec, table)
        raw.execute(f"DROP TABLE IF EXISTS {_q(schema)}.{_q(QUARANTINE_RELATION)}")
        raw.execute(
            f"CREATE TABLE {_q(schema)}.{_q(QUARANTINE_RELATION)} (idb_table VARCHAR, file VARCHAR, "
            "line INTEGER, column_name VARCHAR, reason VARCHAR)"
        )
        if quarantined:
            raw.executemany(
                f"INSERT INTO {_q(schema)}.{_q(QUARANTINE_RELATION)} VALUES (?, ?, ?, ?, ?)",
                [[r.idb_table, r.file, r.line, r.column, r.reason] for r in quarantined],
            )
    return LoadedPackage(
        package_dir=package_dir,
        schema=schema,
        org_id_provider=provider,
        org_id_submit=submit,
        period=period,
        rows={t: tbl.num_rows for t, (_, tbl) in loaded.items()},
        missing=tuple(s.idb_table for n, s in specs.items() if n not in by_name),
        quarantined=quarantined,
    )
