"""Fill the official MHSDS Access IDB template from a submission package (Windows + Access ODBC).

SDCS Cloud takes MHSDS only as the Intermediate Database (IDB, ``.accdb``) published by NHS
England, with its structure unaltered (mhsds.md 6). The package is IDB-shaped CSV; this loader
copies the blank template to a new file and inserts every row through the Microsoft Access ODBC
driver, then checks the row counts. Everything except opening the connection is plain Python:
the SQL (``INSERT INTO [Table] ([Col], ...) VALUES (?, ...)`` in IDB column order), the type
conversion to what the template's fields hold, and the batching are unit-tested on Linux with a
fake cursor. :func:`connect` is the only code that touches pyodbc, imported when called.

Run on a Windows machine with the Microsoft Access Database Engine (ACE) ODBC driver, whose
bitness matches Python's::

    pip install pyarrow pyyaml pyodbc          # and this repository's plugins/ on PYTHONPATH
    python -m mhsds_pipeline.submission.access_loader --package v002 --idb "MHSDS_IDB_v6.0.accdb"

It refuses a package whose files do not match ``submission_manifest.json`` (sha256), a template
that lacks a table or column of the package or whose field types cannot hold the data, and a
template that already has rows. The blank template is never modified: the output is a copy
(``--out``, default ``<template>_<org>_<YYYY-MM>_<version>.accdb`` beside the template). On any
error the copy is rolled back and deleted. Tables of the IDB that the package does not populate
are left empty. Uploading the file to SDCS Cloud stays a manual, signed-off step.

Values: NULL stays NULL; dates, times and timestamps go to Date/Time fields as datetimes (a time
on Access's zero date 1899-12-30) or, if the template holds them as text, as the package text;
integers to number fields; codes to text fields exactly as written (leading zeros kept). A blank
(empty-string) value in a non-text field is loaded as NULL. Error messages name table, row
number and column, never the value (it may be a patient identifier).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mhsds_pipeline.checksums import sha256_file
from mhsds_pipeline.submission.manifest import MANIFEST_NAME

ACCESS_DRIVER = "{Microsoft Access Driver (*.mdb, *.accdb)}"
DEFAULT_BATCH_SIZE = 1000
ACCESS_ZERO_DATE = date(1899, 12, 30)  # Access stores a time-only value on this day

_KINDS = {
    "text": {
        "VARCHAR",
        "LONGCHAR",
        "CHAR",
        "WCHAR",
        "WVARCHAR",
        "WLONGVARCHAR",
        "LONGVARCHAR",
        "TEXT",
        "MEMO",
    },
    "datetime": {"DATETIME", "DATE", "TIME", "TIMESTAMP"},
    "integer": {"INTEGER", "SMALLINT", "BYTE", "TINYINT", "BIGINT", "COUNTER", "LONG"},
    "float": {"DOUBLE", "REAL", "FLOAT"},
    "decimal": {"DECIMAL", "NUMERIC", "CURRENCY", "MONEY"},
}
#: Package column type -> target field kinds that can hold it without loss.
COMPATIBLE = {
    "varchar": {"text", "integer", "float", "decimal"},
    "date": {"text", "datetime"},
    "time": {"text", "datetime"},
    "timestamp": {"text", "datetime"},
    "integer": {"text", "integer", "float", "decimal"},
    "bigint": {"text", "integer", "float", "decimal"},
}
_DEFAULT_KIND = {"varchar": "text", "date": "datetime", "time": "datetime", "timestamp": "datetime"}
_PATTERNS = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "time": re.compile(r"^\d{2}:\d{2}:\d{2}$"),
    "timestamp": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"),
    "integer": re.compile(r"^-?\d+$"),
}


class LoadError(RuntimeError):
    """The package cannot be loaded into this template; nothing is kept."""


@dataclass(frozen=True)
class TargetColumn:
    """A field of the IDB template, as the ODBC driver describes it."""

    name: str
    type_name: str
    size: int | None = None
    nullable: bool = True

    @property
    def kind(self) -> str:
        base = self.type_name.strip().upper().split("(")[0]
        for kind, names in _KINDS.items():
            if base in names:
                return kind
        return "other"


# ---------------------------------------------------------------------------------------------
# SQL


def quote_identifier(name: str) -> str:
    """Access SQL identifier quoting (brackets; IDB names such as ``Procedure`` are reserved)."""
    if not name or any(ch in name for ch in "[]\r\n") or name != name.strip():
        raise ValueError(f"not a usable Access identifier: {name!r}")
    return f"[{name}]"


def insert_sql(table: str, columns: Sequence[str]) -> str:
    """One parameterised INSERT in IDB column order (values are never put into the SQL)."""
    cols = ", ".join(quote_identifier(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {quote_identifier(table)} ({cols}) VALUES ({marks})"


def count_sql(table: str) -> str:
    return f"SELECT COUNT(*) FROM {quote_identifier(table)}"


# ---------------------------------------------------------------------------------------------
# Type conversion


def parse_text(text: str, source_type: str) -> Any:
    """A package text value as a Python value of its package type (strict formats)."""
    pattern = _PATTERNS.get("integer" if source_type == "bigint" else source_type)
    if pattern is not None and not pattern.match(text):
        raise ValueError(f"not in the package {source_type} format")
    if source_type == "date":
        return date.fromisoformat(text)
    if source_type == "time":
        return time.fromisoformat(text)
    if source_type == "timestamp":
        return datetime.fromisoformat(text)
    if source_type in ("integer", "bigint"):
        return int(text)
    return text


def make_converter(source_type: str, target: TargetColumn | None) -> Callable[[str | None], Any]:
    """Text from the package -> the parameter value for the template field."""
    kind = target.kind if target else _DEFAULT_KIND.get(source_type, "integer")
    size = target.size if target else None
    if kind not in COMPATIBLE.get(source_type, set()):
        raise ValueError(
            f"{source_type} values cannot go into a {target.type_name if target else kind} field"
        )

    if kind == "text":

        def to_text(v: str | None) -> Any:
            if v is None:
                return None
            if source_type != "varchar":
                parse_text(v, source_type)  # stored as text, but still in the package format
            if size and len(v) > size:
                raise ValueError(f"{len(v)} characters exceed the template field size {size}")
            return v

        return to_text

    def to_value(v: str | None) -> Any:
        if v is None or v == "":
            return None
        if kind == "datetime":
            value = parse_text(v, source_type)
            if source_type == "date":
                return datetime(value.year, value.month, value.day)
            if source_type == "time":
                return datetime.combine(ACCESS_ZERO_DATE, value)
            return value
        if kind == "integer":
            if not _PATTERNS["integer"].match(v):
                raise ValueError("not an integer")
            return int(v)
        try:
            return float(v) if kind == "float" else Decimal(v)
        except (ValueError, InvalidOperation) as exc:
            raise ValueError(f"not a {kind}") from exc

    return to_value


def converters(spec, targets: dict[str, TargetColumn] | None) -> list[Callable[[str | None], Any]]:
    return [make_converter(c.data_type, (targets or {}).get(c.name)) for c in spec.columns]


def convert_rows(
    table: str,
    columns: Sequence[str],
    convs: Sequence[Callable],
    rows: Iterable[Sequence],
    first_row: int = 1,
) -> list[tuple]:
    """Convert text rows to parameter tuples; errors name table, row number and column only."""
    out = []
    for n, row in enumerate(rows, start=first_row):
        values = []
        for col, conv, v in zip(columns, convs, row, strict=True):
            try:
                values.append(conv(v))
            except ValueError as exc:
                raise LoadError(f"{table} row {n} column {col}: {exc}") from None
        out.append(tuple(values))
    return out


def read_text_rows(csv_path: Path, spec) -> Iterator[tuple]:
    """Stream a package file's rows as text tuples (NULL = None, empty string kept)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from mhsds_pipeline.submission.idb import check_header, read_options, unescape_column

    names = spec.column_names
    check_header(csv_path, names)
    text = [c.data_type == "varchar" for c in spec.columns]
    reader = pacsv.open_csv(str(csv_path), **read_options(names, {n: pa.string() for n in names}))
    for batch in reader:
        # Formula-like text was written with a leading apostrophe (idb.py): load the value itself.
        cols = [
            (unescape_column(batch.column(i)) if text[i] else batch.column(i)).to_pylist()
            for i in range(batch.num_columns)
        ]
        yield from zip(*cols, strict=True)


def batched(rows: Iterable, size: int) -> Iterator[list]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def parameter_batches(csv_path: Path, spec, targets, batch_size: int) -> Iterator[list[tuple]]:
    convs = converters(spec, targets)
    first = 1
    for batch in batched(read_text_rows(csv_path, spec), batch_size):
        yield convert_rows(spec.idb_table, spec.column_names, convs, batch, first_row=first)
        first += len(batch)


# ---------------------------------------------------------------------------------------------
# Package and template


def verify_package(package_dir: Path) -> dict:
    """The package manifest, after checking every listed file's sha256 and existence."""
    path = Path(package_dir) / MANIFEST_NAME
    if not path.is_file():
        raise LoadError(f"{package_dir}: no {MANIFEST_NAME}; is this a submission package directory?")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for t in manifest["tables"]:
        if Path(t["file"]).name != t["file"]:
            raise LoadError(f"{t['idb_table']}: file name {t['file']!r} is not a plain name in the package")
        f = Path(package_dir) / t["file"]
        if not f.is_file():
            raise LoadError(f"{t['idb_table']}: {t['file']} is missing from the package")
        if sha256_file(f) != t["sha256"]:
            raise LoadError(f"{t['idb_table']}: {t['file']} does not match its sha256 in {MANIFEST_NAME}")
    return manifest


def template_columns(cursor, table: str) -> list[TargetColumn]:
    """The template table's fields (empty list: no such table), via ODBC SQLColumns."""
    cols = []
    for row in cursor.columns(table=table):
        size = getattr(row, "column_size", None)
        cols.append(
            TargetColumn(
                name=row.column_name,
                type_name=str(row.type_name),
                size=int(size) if size else None,
                nullable=bool(getattr(row, "nullable", 1)),
            )
        )
    return cols


def template_tables(cursor) -> list[str]:
    try:
        return sorted(r.table_name for r in cursor.tables(tableType="TABLE"))
    except (AttributeError, TypeError):
        return []


def check_structure(specs, targets: dict[str, list[TargetColumn]]) -> list[str]:
    """Why the template cannot take the package (empty list: it can)."""
    problems = []
    for spec in specs:
        cols = {c.name: c for c in targets.get(spec.idb_table) or []}
        if not cols:
            problems.append(f"{spec.idb_table}: table not in the template (is it the MHSDS v6.0 IDB?)")
            continue
        for col in spec.columns:
            target = cols.get(col.name)
            if target is None:
                problems.append(f"{spec.idb_table}.{col.name}: field not in the template")
            elif target.kind not in COMPATIBLE.get(col.data_type, set()):
                problems.append(
                    f"{spec.idb_table}.{col.name}: {col.data_type} values cannot go into a {target.type_name} field"
                )
        for name, target in cols.items():
            if name not in spec.column_names and not target.nullable:
                problems.append(f"{spec.idb_table}.{name}: required template field the package does not fill")
    return problems


def load_package(conn, package_dir: Path, batch_size: int = DEFAULT_BATCH_SIZE, echo=None) -> dict:
    """Insert every package table into the open IDB connection, in one transaction."""
    from mhsds_pipeline.submission.idb import spec_from_manifest

    echo = echo or (lambda _msg: None)
    manifest = verify_package(package_dir)
    specs = [spec_from_manifest(t) for t in manifest["tables"]]
    expected = {t["idb_table"]: t["rows"] for t in manifest["tables"]}
    cur = conn.cursor()
    targets = {s.idb_table: template_columns(cur, s.idb_table) for s in specs}
    problems = check_structure(specs, targets)
    if problems:
        raise LoadError("the IDB template cannot take this package:\n  - " + "\n  - ".join(problems))
    occupied = [s.idb_table for s in specs if cur.execute(count_sql(s.idb_table)).fetchone()[0]]
    if occupied:
        raise LoadError(
            f"the IDB already has rows in {occupied}; load into a fresh copy of the blank template"
        )
    loaded: dict[str, int] = {}
    try:
        for spec in specs:
            sql = insert_sql(spec.idb_table, spec.column_names)
            tmap = {c.name: c for c in targets[spec.idb_table]}
            n = 0
            for batch in parameter_batches(Path(package_dir) / spec.file_name, spec, tmap, batch_size):
                cur.executemany(sql, batch)
                n += len(batch)
            loaded[spec.idb_table] = n
            echo(f"  {spec.idb_table:<34} {n:>9,} rows")
        for spec in specs:
            got = cur.execute(count_sql(spec.idb_table)).fetchone()[0]
            if got != expected[spec.idb_table]:
                raise LoadError(
                    f"{spec.idb_table}: {got} rows in the IDB after loading, package has {expected[spec.idb_table]}"
                )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    produced = set(loaded)
    return {
        "period": manifest["reporting_period"],
        "version": manifest["version"],
        "content_sha256": manifest["content_sha256"],
        "tables": loaded,
        "rows": sum(loaded.values()),
        "template_tables_left_empty": [t for t in template_tables(cur) if t not in produced],
    }


def connect(path: Path):
    """Open the .accdb through the Access ODBC driver. The only code that needs pyodbc."""
    import pyodbc  # Windows only; imported here so everything else runs anywhere

    return pyodbc.connect(f"DRIVER={ACCESS_DRIVER};DBQ={Path(path).resolve()};", autocommit=False)


# ---------------------------------------------------------------------------------------------
# CLI


def default_output(template: Path, manifest: dict) -> Path:
    name = (
        f"{template.stem}_{manifest['org_id_provider']}_{manifest['reporting_period']}_{manifest['version']}"
    )
    return template.with_name(name + template.suffix)


def _audit(
    path: Path | None, event: str, what: dict, inputs: dict, outputs: dict | None = None
) -> str | None:
    """Append to the audit log; None when done, else why not (a broken chain or a missing key
    is reported, never raised over the load's own outcome)."""
    if path is None:
        return None
    from mhsds_pipeline.submission import audit

    try:
        audit.append(path, event, run_id=None, what=what, inputs=inputs, outputs=outputs)
    except audit.AuditError as exc:
        return f"the audit log {path} was not written: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mhsds_pipeline.submission.access_loader",
        description="Load an MHSDS submission package into a copy of the official Access IDB template.",
    )
    parser.add_argument(
        "--package", required=True, type=Path, help="package directory (has submission_manifest.json)"
    )
    parser.add_argument(
        "--idb", required=True, type=Path, help="the blank IDB template (.accdb); never modified"
    )
    parser.add_argument("--out", type=Path, default=None, help="the .accdb to create (must not exist)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--dry-run", action="store_true", help="verify the package and print the SQL; no ODBC"
    )
    parser.add_argument(
        "--audit-log", type=Path, default=None, help="default: the package's audit_log.jsonl if present"
    )
    ns = parser.parse_args(argv)

    try:
        manifest = verify_package(ns.package)
    except (LoadError, OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ns.dry_run:
        for t in manifest["tables"]:
            cols = [c["name"] for c in t["columns"]]
            print(f"-- {t['idb_table']}: {t['rows']} rows from {t['file']}")
            print(insert_sql(t["idb_table"], cols) + ";")
        return 0

    audit_log = ns.audit_log
    if audit_log is None:
        candidate = Path(ns.package).resolve().parent.parent / "audit_log.jsonl"
        audit_log = candidate if candidate.is_file() else None
    if not ns.idb.is_file():
        print(f"error: IDB template {ns.idb} not found", file=sys.stderr)
        return 2
    out = ns.out or default_output(ns.idb, manifest)
    if out.exists():
        print(f"error: {out} exists; each load goes into a fresh copy of the template", file=sys.stderr)
        return 2
    inputs = {
        "submission_manifest_sha256": sha256_file(Path(ns.package) / MANIFEST_NAME),
        "content_sha256": manifest["content_sha256"],
        "template": str(ns.idb),
        "template_sha256": sha256_file(ns.idb),
    }
    what = {
        "period": manifest["reporting_period"],
        "version": manifest["version"],
        "package": str(ns.package),
    }
    shutil.copyfile(ns.idb, out)
    conn = None
    try:
        conn = connect(out)
        print(f"Loading MHSDS {manifest['reporting_period']} {manifest['version']} into {out}")
        summary = load_package(conn, ns.package, ns.batch_size, echo=print)
    except Exception as exc:  # noqa: BLE001 - reported, audited, and the partial copy removed
        if conn is not None:
            conn.close()
        out.unlink(missing_ok=True)
        print(f"error: {exc}\nNothing was kept ({out} removed).", file=sys.stderr)
        problem = _audit(audit_log, "access_load_failed", {**what, "error": str(exc)[:2000]}, inputs)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    conn.close()
    problem = _audit(
        audit_log,
        "access_loaded",
        {**what, "out": str(out), "rows": summary["tables"]},
        inputs,
        {"idb_sha256": sha256_file(out)},
    )
    if problem:  # the IDB is built, but IG's trail of it is not: do not upload until fixed
        print(
            f"error: {problem}\n{out} was built but its load is not in the audit log: fix the log "
            "(`mhsds audit verify`) and load again before uploading.",
            file=sys.stderr,
        )
        return 3
    print(json.dumps(summary, indent=2))
    print(f"\n{out} is ready. Check it, then upload it to SDCS Cloud for {manifest['reporting_period']}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
