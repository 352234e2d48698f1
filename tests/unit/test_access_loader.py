"""Access IDB loader: SQL text, parameter order, type conversion and batching, with a fake ODBC
cursor (the real pyodbc call is one function, exercised only on Windows)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from mhsds_pipeline.submission import access_loader as al
from mhsds_pipeline.submission import audit
from mhsds_pipeline.submission.idb import ColumnSpec, TableSpec, write_csv
from mhsds_pipeline.submission.package import MANIFEST_NAME, sha256_file

pytestmark = pytest.mark.unit

HEADER = TableSpec(
    "MHS000Header",
    "mhs000_header",
    (),
    (
        ColumnSpec("DatSetVer", "varchar", "M000010", "text", None),
        ColumnSpec("ReportingPeriodStartDate", "date", "M000050", "YYYY-MM-DD", None),
        ColumnSpec("DateTimeDatSetCreate", "timestamp", "M000070", "YYYY-MM-DDTHH:MM:SS", None),
    ),
)
ACTIVITY = TableSpec(
    "MHS202CareActivity",
    "mhs202_care_activity",
    ("CareActID",),
    (
        ColumnSpec("CareActID", "varchar", "M202904", "text", None),
        ColumnSpec("CareContTime", "time", None, "HH:MM:SS", None),
        ColumnSpec("ClinContactDurOfCareAct", "integer", "M202020", "integer", None),
        ColumnSpec("Procedure", "varchar", "M202110", "text", None),
    ),
)
ACTIVITY_ROWS = {
    "CareActID": ["A1", "A2", "A3", "A4", "A5"],
    "CareContTime": [time(9, 0, 5), None, time(23, 59, 59), time(0, 0), time(12, 30)],
    "ClinContactDurOfCareAct": pa.array([10, None, 0, 45, 5], pa.int32()),
    "Procedure": ["0123", "", None, "1111681000000103", 'x "y", z'],
}
# What the ACE ODBC driver reports for the template's fields (SQLColumns)
TEMPLATE = {
    "MHS000Header": [
        ("DatSetVer", "VARCHAR", 3),
        ("ReportingPeriodStartDate", "DATETIME", 19),
        ("DateTimeDatSetCreate", "DATETIME", 19),
    ],
    "MHS202CareActivity": [
        ("CareActID", "VARCHAR", 20),
        ("CareContTime", "DATETIME", 19),
        ("ClinContactDurOfCareAct", "INTEGER", 10),
        ("Procedure", "VARCHAR", 18),
        ("CareProfLocalID", "VARCHAR", 20),  # a template field the package does not fill
    ],
    "MHS001MPI": [("LocalPatientID", "VARCHAR", 20)],
}


class FakeCursor:
    def __init__(self, template: dict, rows: dict | None = None):
        self.template = template
        self.rows = {t: list(r) for t, r in (rows or {}).items()}
        self.executemany_calls: list[tuple[str, list]] = []
        self._result = None

    def columns(self, table: str):
        return [
            SimpleNamespace(column_name=n, type_name=t, column_size=s, nullable=1)
            for n, t, s in self.template.get(table, [])
        ]

    def tables(self, tableType: str):  # noqa: N803 - pyodbc's keyword
        return [SimpleNamespace(table_name=t) for t in self.template]

    def execute(self, sql: str):
        assert sql.startswith("SELECT COUNT(*) FROM [") and sql.endswith("]")
        self._result = (len(self.rows.get(sql[len("SELECT COUNT(*) FROM [") : -1], [])),)
        return self

    def fetchone(self):
        return self._result

    def executemany(self, sql: str, params: list):
        self.executemany_calls.append((sql, list(params)))
        table = sql.split("[", 1)[1].split("]", 1)[0]
        self.rows.setdefault(table, []).extend(params)


class FakeConnection:
    def __init__(self, cursor: FakeCursor):
        self._cursor, self.committed, self.rolled_back, self.closed = cursor, False, False, False

    def cursor(self):
        return self._cursor

    def commit(self):
        self.committed = True

    def rollback(self):
        self.rolled_back = True

    def close(self):
        self.closed = True


def make_package(root: Path, activity: dict | None = None) -> Path:
    """A two-table package in the package format (what package.py writes)."""
    pkg = root / "submissions" / "2024-04" / "v001"
    pkg.mkdir(parents=True)
    tables = {
        HEADER: pa.table(
            {
                "DatSetVer": ["6.0"],
                "ReportingPeriodStartDate": [date(2024, 4, 1)],
                "DateTimeDatSetCreate": pa.array([datetime(2024, 5, 1, 0, 0, 1)], pa.timestamp("us")),
            }
        ),
        ACTIVITY: pa.table(activity or ACTIVITY_ROWS),
    }
    entries = []
    for spec, table in tables.items():
        write_csv(table, spec, pkg / spec.file_name)
        entries.append(
            {
                "idb_table": spec.idb_table,
                "dbt_model": spec.model,
                "file": spec.file_name,
                "rows": table.num_rows,
                "sha256": sha256_file(pkg / spec.file_name),
                "key": list(spec.key),
                "columns": [c.as_manifest() for c in spec.columns],
            }
        )
    manifest = {
        "reporting_period": "2024-04",
        "org_id_provider": "R1A",
        "version": "v001",
        "content_sha256": "c" * 64,
        "tables": entries,
    }
    (pkg / MANIFEST_NAME).write_text(json.dumps(manifest))
    return pkg


# --------------------------------------------------------------------------------- SQL text


def test_insert_sql_is_parameterised_in_idb_column_order():
    assert al.insert_sql("MHS202CareActivity", ACTIVITY.column_names) == (
        "INSERT INTO [MHS202CareActivity] ([CareActID], [CareContTime], [ClinContactDurOfCareAct], [Procedure]) "
        "VALUES (?, ?, ?, ?)"
    )
    assert al.count_sql("MHS000Header") == "SELECT COUNT(*) FROM [MHS000Header]"


@pytest.mark.parametrize("bad", ["a]b", "[x", "", " padded", "two\nlines"])
def test_identifiers_that_cannot_be_bracket_quoted_are_refused(bad):
    with pytest.raises(ValueError):
        al.quote_identifier(bad)


# ------------------------------------------------------------------------- type conversion


def T(type_name: str, size: int | None = None) -> al.TargetColumn:  # noqa: N802 - reads like a type
    return al.TargetColumn("c", type_name, size)


@pytest.mark.parametrize(
    ("source_type", "target", "text", "expected"),
    [
        ("date", T("DATETIME"), "2024-04-30", datetime(2024, 4, 30)),
        ("time", T("DATETIME"), "09:05:07", datetime(1899, 12, 30, 9, 5, 7)),
        ("timestamp", T("DATETIME"), "2024-05-01T00:00:01", datetime(2024, 5, 1, 0, 0, 1)),
        ("date", T("VARCHAR", 10), "2024-04-30", "2024-04-30"),
        ("time", T("VARCHAR", 8), "09:05:07", "09:05:07"),
        ("integer", T("INTEGER"), "45", 45),
        ("integer", T("SMALLINT"), "-3", -3),
        ("integer", T("VARCHAR", 5), "45", "45"),
        ("varchar", T("VARCHAR", 2), "01", "01"),  # leading zero kept
        ("varchar", T("VARCHAR", 2), "", ""),  # empty string stays empty in a text field
        ("varchar", T("LONGCHAR"), "x" * 300, "x" * 300),
        ("varchar", T("DOUBLE"), "12.5", 12.5),
        ("varchar", T("DECIMAL"), "12.50", Decimal("12.50")),
        ("varchar", T("INTEGER"), "07", 7),
        ("date", T("DATETIME"), "", None),  # blank in a non-text field -> NULL
        ("date", T("DATETIME"), None, None),
        ("varchar", T("VARCHAR", 2), None, None),
        ("integer", None, "5", 5),  # no template metadata: the package type decides
        ("time", None, "00:00:00", datetime(1899, 12, 30)),
    ],
)
def test_values_are_converted_to_what_the_template_field_holds(source_type, target, text, expected):
    value = al.make_converter(source_type, target)(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("source_type", "target", "text", "message"),
    [
        ("varchar", T("VARCHAR", 2), "ABC", "3 characters exceed the template field size 2"),
        ("date", T("DATETIME"), "30/04/2024", "not in the package date format"),
        ("time", T("VARCHAR", 8), "9:05", "not in the package time format"),
        ("timestamp", T("DATETIME"), "2024-05-01 00:00:01", "not in the package timestamp format"),
        ("varchar", T("INTEGER"), "12a", "not an integer"),
        ("varchar", T("DOUBLE"), "n/a", "not a float"),
    ],
)
def test_unconvertible_values_raise(source_type, target, text, message):
    with pytest.raises(ValueError, match=message):
        al.make_converter(source_type, target)(text)


@pytest.mark.parametrize(
    ("source_type", "type_name"), [("varchar", "DATETIME"), ("date", "INTEGER"), ("varchar", "BIT")]
)
def test_incompatible_field_types_are_refused(source_type, type_name):
    with pytest.raises(ValueError, match="cannot go into"):
        al.make_converter(source_type, T(type_name))


def test_conversion_errors_name_table_row_and_column_not_the_value():
    convs = [al.make_converter("varchar", T("VARCHAR", 10)), al.make_converter("date", T("DATETIME"))]
    rows = [("9434765919", "2024-04-01"), ("9434765919", "01/04/2024")]
    with pytest.raises(al.LoadError) as info:
        al.convert_rows("MHS001MPI", ["NHSNumber", "PersonBirthDate"], convs, rows, first_row=11)
    assert str(info.value) == "MHS001MPI row 12 column PersonBirthDate: not in the package date format"
    assert "9434765919" not in str(info.value)


# ------------------------------------------------------------------------- batching and load


def test_rows_are_read_in_order_and_batched(tmp_path):
    pkg = make_package(tmp_path)
    targets = {c.name: c for c in (al.TargetColumn(n, t, s) for n, t, s in TEMPLATE["MHS202CareActivity"])}
    batches = list(al.parameter_batches(pkg / ACTIVITY.file_name, ACTIVITY, targets, batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    rows = [r for b in batches for r in b]
    assert rows == [
        ("A1", datetime(1899, 12, 30, 9, 0, 5), 10, "0123"),
        ("A2", None, None, ""),
        ("A3", datetime(1899, 12, 30, 23, 59, 59), 0, None),
        ("A4", datetime(1899, 12, 30, 0, 0), 45, "1111681000000103"),
        ("A5", datetime(1899, 12, 30, 12, 30), 5, 'x "y", z'),
    ]
    with pytest.raises(ValueError):
        list(al.batched([1], 0))


def test_load_package_inserts_every_table_in_one_transaction(tmp_path):
    pkg = make_package(tmp_path)
    cursor = FakeCursor(TEMPLATE)
    conn = FakeConnection(cursor)
    summary = al.load_package(conn, pkg, batch_size=2)
    assert conn.committed and not conn.rolled_back
    assert [(sql, len(params)) for sql, params in cursor.executemany_calls] == [
        (
            "INSERT INTO [MHS000Header] ([DatSetVer], [ReportingPeriodStartDate], [DateTimeDatSetCreate]) VALUES (?, ?, ?)",
            1,
        ),
        (al.insert_sql("MHS202CareActivity", ACTIVITY.column_names), 2),
        (al.insert_sql("MHS202CareActivity", ACTIVITY.column_names), 2),
        (al.insert_sql("MHS202CareActivity", ACTIVITY.column_names), 1),
    ]
    assert cursor.executemany_calls[0][1] == [("6.0", datetime(2024, 4, 1), datetime(2024, 5, 1, 0, 0, 1))]
    assert summary["tables"] == {"MHS000Header": 1, "MHS202CareActivity": 5}
    assert summary["rows"] == 6
    assert summary["template_tables_left_empty"] == ["MHS001MPI"]


def test_template_structure_mismatch_is_refused_before_any_insert(tmp_path):
    pkg = make_package(tmp_path)
    template = dict(TEMPLATE)
    template["MHS202CareActivity"] = [c for c in TEMPLATE["MHS202CareActivity"] if c[0] != "Procedure"]
    template["MHS000Header"] = [
        TEMPLATE["MHS000Header"][0],
        ("ReportingPeriodStartDate", "INTEGER", 10),
        TEMPLATE["MHS000Header"][2],
    ]
    cursor = FakeCursor(template)
    with pytest.raises(al.LoadError) as info:
        al.load_package(FakeConnection(cursor), pkg)
    assert "MHS202CareActivity.Procedure: field not in the template" in str(info.value)
    assert "MHS000Header.ReportingPeriodStartDate: date values cannot go into a INTEGER field" in str(
        info.value
    )
    assert cursor.executemany_calls == []
    del template["MHS000Header"]
    with pytest.raises(al.LoadError, match="MHS000Header: table not in the template"):
        al.load_package(FakeConnection(FakeCursor(template)), pkg)


def test_a_template_with_rows_is_refused(tmp_path):
    pkg = make_package(tmp_path)
    cursor = FakeCursor(TEMPLATE, rows={"MHS202CareActivity": [("old",)]})
    with pytest.raises(al.LoadError, match="already has rows in \\['MHS202CareActivity'\\]"):
        al.load_package(FakeConnection(cursor), pkg)
    assert cursor.executemany_calls == []


def test_a_bad_value_rolls_the_whole_load_back(tmp_path):
    pkg = make_package(tmp_path, activity={**ACTIVITY_ROWS, "CareActID": ["A1", "A2", "A3", "A4", "X" * 21]})
    conn = FakeConnection(FakeCursor(TEMPLATE))
    with pytest.raises(al.LoadError, match="MHS202CareActivity row 5 column CareActID: 21 characters exceed"):
        al.load_package(conn, pkg, batch_size=2)
    assert conn.rolled_back and not conn.committed


def test_a_tampered_package_is_refused(tmp_path):
    pkg = make_package(tmp_path)
    path = pkg / ACTIVITY.file_name
    path.write_bytes(path.read_bytes().replace(b'"A1"', b'"B1"'))
    with pytest.raises(al.LoadError, match="does not match its sha256"):
        al.verify_package(pkg)


# ------------------------------------------------------------------------------------- CLI


def test_cli_dry_run_prints_the_sql_without_odbc(tmp_path, capsys):
    pkg = make_package(tmp_path)
    assert al.main(["--package", str(pkg), "--idb", str(tmp_path / "none.accdb"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "-- MHS202CareActivity: 5 rows from MHS202CareActivity.csv" in out
    assert al.insert_sql("MHS202CareActivity", ACTIVITY.column_names) + ";" in out


def test_cli_loads_a_copy_of_the_template_and_audits(tmp_path, monkeypatch, capsys):
    pkg = make_package(tmp_path)
    log_path = tmp_path / "submissions" / "audit_log.jsonl"
    audit.append(log_path, "package_created", run_id="r", what={})
    template = tmp_path / "MHSDS_IDB.accdb"
    template.write_bytes(b"blank template")
    conns = []

    def fake_connect(path):
        assert (
            path == tmp_path / "MHSDS_IDB_R1A_2024-04_v001.accdb" and path.read_bytes() == b"blank template"
        )
        conns.append(FakeConnection(FakeCursor(TEMPLATE)))
        return conns[-1]

    monkeypatch.setattr(al, "connect", fake_connect)
    assert al.main(["--package", str(pkg), "--idb", str(template)]) == 0
    assert conns[0].committed and conns[0].closed
    assert template.read_bytes() == b"blank template"
    assert (tmp_path / "MHSDS_IDB_R1A_2024-04_v001.accdb").exists()
    last = audit.read(log_path)[-1]
    assert last["event"] == "access_loaded" and last["what"]["rows"] == {
        "MHS000Header": 1,
        "MHS202CareActivity": 5,
    }
    assert last["inputs"]["submission_manifest_sha256"] == sha256_file(pkg / MANIFEST_NAME)
    assert audit.verify(log_path) == []
    # the output exists now: a second load is refused rather than appended
    assert al.main(["--package", str(pkg), "--idb", str(template)]) == 2
    capsys.readouterr()


def test_cli_failure_removes_the_partial_copy(tmp_path, monkeypatch, capsys):
    pkg = make_package(tmp_path)
    template = tmp_path / "MHSDS_IDB.accdb"
    template.write_bytes(b"blank template")
    broken = {k: v for k, v in TEMPLATE.items() if k != "MHS202CareActivity"}
    monkeypatch.setattr(al, "connect", lambda path: FakeConnection(FakeCursor(broken)))
    out = tmp_path / "out.accdb"
    assert al.main(["--package", str(pkg), "--idb", str(template), "--out", str(out)]) == 1
    assert not out.exists()
    assert "MHS202CareActivity: table not in the template" in capsys.readouterr().err


def test_connect_needs_pyodbc_only_when_called(tmp_path):
    if "pyodbc" in sys.modules or __import__("importlib").util.find_spec("pyodbc"):
        pytest.skip("pyodbc is installed here")
    with pytest.raises(ModuleNotFoundError, match="pyodbc"):
        al.connect(tmp_path / "x.accdb")
