"""The system view reads providers' submission packages and runs the rules per provider (issue #15).

Two providers' packages are written with ``idb.write_csv`` from small hand-built tables (header,
MPI, referral, with planted defects and one NHS number both providers hold); loading and
validating them must give, per provider, the same rule counts as ``run_rules`` on the original
tables, keep the providers apart, refuse an unknown table file by name, quarantine a malformed
row with file, line and reason, and load a CSV with its columns in another order identically.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from system_packages import write_package

from mhsds_pipeline.config import load_settings
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.engine import run_rules
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.rules import DBT_PROJECT, load_catalogue
from mhsds_pipeline.submission.idb import table_specs
from mhsds_pipeline.system.sources import PackageError, load_package
from mhsds_pipeline.system.validate import RESULTS_FILE, validate_packages

pytestmark = pytest.mark.unit

PERIOD = ReportingPeriod.parse("2026-10")
SHARED_NHS = "9434765919"
SPECS = {s.idb_table: s for s in table_specs(DBT_PROJECT)}


def _tables(org: str, defects: int) -> dict[str, pa.Table]:
    """Header + MPI + referral for one provider; ``defects`` referrals point at no patient."""
    header = {
        "DatSetVer": "6.0",
        "OrgIDProvider": org,
        "OrgIDSubmit": org,
        "PrimSystemInUse": "=SYS",  # formula-escaped in the file, read back unescaped
        "ReportingPeriodStartDate": date(2026, 10, 1),
        "ReportingPeriodEndDate": date(2026, 10, 31),
        "DateTimeDatSetCreate": datetime(2026, 11, 3, 9, 30, 0),
    }
    mpi = [
        {"LocalPatientID": f"{org}P1", "OrgIDLocalPatientID": org, "NHSNumber": SHARED_NHS, "NHSNumberStatus": "01",
         "PersonBirthDate": date(1980, 5, 17), "Postcode": "LS1 4AP", "GenderIDCode": "1", "EthnicCategory": "A"},
        {"LocalPatientID": f"{org}P2", "OrgIDLocalPatientID": org, "NHSNumber": None, "NHSNumberStatus": "",
         "PersonBirthDate": date(2030, 1, 1), "Postcode": "TOO LONG POSTCODE", "GenderIDCode": "9"},
    ]  # fmt: skip
    referrals = [
        {"ServiceRequestID": f"{org}R{i}", "LocalPatientID": f"{org}P{1 + i % 2}", "OrgIDComm": "15F",
         "ReferralRequestReceivedDate": date(2026, 10, 2 + i), "ReferralRequestReceivedTime": time(9, i),
         "SourceOfReferralMH": "A1", "ClinRespPriorityType": "3", "PrimReasonReferralMH": "01"}
        for i in range(4)
    ] + [
        {"ServiceRequestID": f"{org}X{i}", "LocalPatientID": "NOBODY", "ReferralRequestReceivedDate": date(2026, 9, 1)}
        for i in range(defects)
    ]  # fmt: skip
    rows = {"MHS000Header": [header], "MHS001MPI": mpi, "MHS101Referral": referrals}
    return {t: pa.Table.from_pylist(r, schema=SPECS[t].arrow_schema) for t, r in rows.items()}


def _reference(con, schema: str, tables: dict[str, pa.Table]) -> None:
    """The original tables straight into the warehouse (no CSV), every other table empty."""
    con.execute(f"CREATE SCHEMA {schema}")
    for spec in SPECS.values():
        cols = ", ".join(f'"{c.name}" {c.data_type}' for c in spec.columns)
        con.execute(f'CREATE TABLE {schema}."{spec.model}" ({cols})')
        if spec.idb_table in tables:
            incoming = tables[spec.idb_table]  # noqa: F841 (read by DuckDB's replacement scan)
            con.execute(f'INSERT INTO {schema}."{spec.model}" SELECT * FROM incoming')


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("system")
    originals = {"R1A": _tables("R1A", defects=1), "RX4": _tables("RX4", defects=3)}
    dirs = [write_package(t, root / "packages" / org) for org, t in originals.items()]
    results = validate_packages(dirs, root / "system.duckdb", output_path=root / "out")
    # the reference: run_rules on the original tables, one provider at a time
    settings = replace(load_settings(), warehouse_target="duckdb")
    catalogue, expected = load_catalogue(), {}
    engine = sa.create_engine(f"duckdb:///{root / 'reference.duckdb'}")
    for org, tables in originals.items():
        with engine.begin() as conn:
            _reference(conn.connection.driver_connection, f"ref_{org.lower()}", tables)
        ctx = replace(
            sql_context(settings, PERIOD), schema=f"ref_{org.lower()}", org_id_provider=org, org_id_submit=org
        )
        expected[org] = run_rules(engine, catalogue, ctx).failures
    engine.dispose()
    return root, originals, results, expected


def test_rule_counts_per_provider_equal_run_rules_on_the_original_tables(system):
    _, _, results, expected = system
    assert set(results.outcomes) == {"R1A", "RX4"}
    for org in ("R1A", "RX4"):
        assert results.failures(org) == expected[org], org
        assert results.failures(org), f"{org}: the planted defects fire rules"
    # the providers' defects differ, and so do their counts: nothing is pooled
    assert results.failures("R1A") != results.failures("RX4")


def test_providers_are_kept_apart_and_the_shared_nhs_number_merges_nothing(system):
    root, originals, results, _ = system
    con = duckdb.connect(str(root / "system.duckdb"), read_only=True)
    try:
        for org in ("R1A", "RX4"):
            pkg = results.packages[org]
            assert pkg.schema == f"provider_{org.lower()}" and pkg.period == PERIOD
            assert (
                pkg.rows["MHS001MPI"] == 2
                and pkg.rows["MHS101Referral"] == originals[org]["MHS101Referral"].num_rows
            )
            ids = con.execute(f'SELECT "LocalPatientID" FROM {pkg.schema}.mhs001_mpi ORDER BY 1').fetchall()
            assert ids == [(f"{org}P1",), (f"{org}P2",)]
            shared = con.execute(
                f"SELECT COUNT(*) FROM {pkg.schema}.mhs001_mpi WHERE \"NHSNumber\" = '{SHARED_NHS}'"
            )
            assert shared.fetchone()[0] == 1
            header = con.execute(f'SELECT "PrimSystemInUse" FROM {pkg.schema}.mhs000_header').fetchone()
            assert header == ("=SYS",)
            assert "MHS201CareContact" in pkg.missing and pkg.rows["MHS201CareContact"] == 0
    finally:
        con.close()
    table = pq.read_table(root / "out" / RESULTS_FILE)
    assert set(table.column("org_id_provider").to_pylist()) == {"R1A", "RX4"}
    assert table.schema.names[0] == "org_id_provider" and "numerator" in table.schema.names
    row = [
        r for r in table.to_pylist()
        if r["org_id_provider"] == "RX4" and r["check_id"] in results.failures("RX4") and r["numerator"]
    ]  # fmt: skip
    assert row and all(r["numerator"] == results.failures("RX4")[r["check_id"]] for r in row)


def _engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"duckdb:///{path}")


def test_an_unknown_table_file_is_refused_by_name(tmp_path):
    pkg = write_package(_tables("R1A", 0), tmp_path / "pkg")
    (pkg / "MHS999Unknown.csv").write_text('"A"\r\n"1"\r\n')
    with pytest.raises(PackageError, match=r"MHS999Unknown\.csv"):
        load_package(pkg, _engine(tmp_path / "w.duckdb"), "p")


def test_an_unknown_column_is_refused_with_file_line_and_column(tmp_path):
    pkg = write_package(_tables("R1A", 0), tmp_path / "pkg")
    path = pkg / "MHS001MPI.csv"
    path.write_text(path.read_text().replace('"Postcode"', '"PostCode"', 1))
    with pytest.raises(PackageError, match=r"MHS001MPI\.csv: line 1, column 7: 'PostCode'"):
        load_package(pkg, _engine(tmp_path / "w.duckdb"), "p")


def test_a_malformed_row_is_quarantined_with_file_line_and_reason(tmp_path):
    pkg = write_package(_tables("R1A", 0), tmp_path / "pkg")
    path = pkg / "MHS101Referral.csv"
    lines = path.read_bytes().decode().split("\r\n")
    lines[2] = lines[2].replace('"2026-10-03"', '"2026-13-03"')  # line 3: impossible date
    lines[4] = '"R1AR2","short row"'  # line 6 after the blank line below: wrong number of fields
    lines.insert(3, "")  # a blank line (line 4) is no row, and keeps the line numbers right
    path.write_bytes("\r\n".join(lines).encode())
    engine = _engine(tmp_path / "w.duckdb")
    loaded = load_package(pkg, engine, "p")
    engine.dispose()
    bad = [(r.file, r.line, r.column) for r in loaded.quarantined]
    assert bad == [("MHS101Referral.csv", 3, "ReferralRequestReceivedDate"), ("MHS101Referral.csv", 6, None)]
    assert "is not a date" in loaded.quarantined[0].reason and "2026-13" not in loaded.quarantined[0].reason
    assert "field(s)" in loaded.quarantined[1].reason
    assert loaded.quarantine_counts() == {"MHS101Referral": 2} and loaded.rows["MHS101Referral"] == 2
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    assert con.execute("SELECT file, line FROM p._quarantine ORDER BY line").fetchall() == [
        ("MHS101Referral.csv", 3),
        ("MHS101Referral.csv", 6),
    ]
    con.close()


def test_columns_in_another_order_load_identically(tmp_path):
    tables = _tables("R1A", 1)
    ordered = write_package(tables, tmp_path / "ordered")
    shuffled = write_package(tables, tmp_path / "shuffled")
    for name in ("MHS001MPI.csv", "MHS101Referral.csv"):
        # no value holds a comma, so fields split on commas; NULL (unquoted) and "" stay distinct
        lines = (ordered / name).read_bytes().decode().split("\r\n")
        out = [",".join(reversed(line.split(","))) if line else line for line in lines]
        (shuffled / name).write_bytes("\r\n".join(out).encode())
        assert (shuffled / name).read_bytes() != (ordered / name).read_bytes()
    engine = _engine(tmp_path / "w.duckdb")
    load_package(ordered, engine, "a")
    load_package(shuffled, engine, "b")
    engine.dispose()
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    for model in ("mhs001_mpi", "mhs101_referral"):
        a = con.execute(f"SELECT * FROM a.{model} ORDER BY ALL").fetchall()
        b = con.execute(f"SELECT * FROM b.{model} ORDER BY ALL").fetchall()
        assert a == b and len(a) >= 2
    con.close()
