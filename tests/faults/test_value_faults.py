"""Hostile values (issue 10, items 3 and 4): each reaches the outcome it should, and nothing a
person opens holds a control character or a cell a spreadsheet would run.

* in the warehouse, the v6 format rules reject the record with the v6 rule id (quarantine view);
* the submission CSV writer refuses control characters and escapes formula-like cells;
* the finance workbook stores formula-like text as text;
* a provider or submitter that is not an ODS code, or not an allowed organisation, is a
  configuration error before anything is extracted, and the last good outputs stay byte-identical;
* no error text carries an NHS number.
"""

from __future__ import annotations

import re
from dataclasses import replace

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa
from _fault_helpers import REPO, assert_no_nhs_number, assert_tree_unchanged, point_env_at, tree_snapshot

from mhsds_pipeline.config import ConfigurationError, load_settings
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.engine import quarantine_view, run_rules
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.rules import load_catalogue
from mhsds_pipeline.submission.idb import FormatError, read_csv, table_specs, write_csv

pytestmark = pytest.mark.unit

PERIOD = ReportingPeriod.parse("2026-10")
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # CR/LF are the CSV row ends

#: (table, key column, key, column, hostile value, rule id expected in quarantine)
HOSTILE = [
    ("mhs101_referral", "ServiceRequestID", "R2", "OrgIDComm", "E" * 120_000, "MHS10109"),
    ("mhs001_mpi", "LocalPatientID", "P2", "Postcode", "WR5\r\n2AB", "MHS00169"),
    ("mhs001_mpi", "LocalPatientID", "P3", "Postcode", "WR5\x1b2AB", "MHS00169"),
    ("mhs604_prim_diag", "ServiceRequestID", "R3", "PrimDiag", "low mood, see letter", "MHS60414"),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A DuckDB warehouse with every MHSDS mart (empty), a few clean rows and the hostile ones."""
    path = tmp_path_factory.mktemp("value_faults") / "w.duckdb"
    contracts = load_contracts(REPO / "dbt_project")
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA analytics")
    for model, c in contracts.items():
        cols = ", ".join(f'"{n}" {t.upper()}' for n, t in c.columns)
        con.execute(f"CREATE TABLE analytics.{model} ({cols})")
    con.execute(
        'INSERT INTO analytics.mhs001_mpi ("LocalPatientID", "OrgIDLocalPatientID", "NHSNumber", "Postcode") '
        "VALUES ('P1', 'R1A', '9434765919', 'WR5 2AB'), ('P2', 'R1A', NULL, ?), ('P3', 'R1A', NULL, ?)",
        [HOSTILE[1][4], HOSTILE[2][4]],
    )
    con.execute(
        'INSERT INTO analytics.mhs101_referral ("ServiceRequestID", "LocalPatientID", "OrgIDComm", '
        "\"ReferralRequestReceivedDate\") VALUES ('R1', 'P1', '18C', DATE '2026-10-02'), "
        "('R2', 'P1', ?, DATE '2026-10-03'), ('R3', 'P1', '18C', DATE '2026-10-04')",
        [HOSTILE[0][4]],
    )
    con.execute(
        "INSERT INTO analytics.mhs604_prim_diag VALUES ('R1', '02', 'F32.1', TIMESTAMP '2026-10-05 10:00:00'), "
        "('R3', '02', ?, TIMESTAMP '2026-10-05 10:00:00'), ('R1', '06', '13746004', TIMESTAMP '2026-10-06 10:00:00')",
        [HOSTILE[3][4]],
    )
    con.close()
    settings = replace(load_settings(), warehouse_target="duckdb", warehouse_path=path)
    engine = sa.create_engine(f"duckdb:///{path}")
    try:
        outcome = run_rules(engine, load_catalogue(), sql_context(settings, PERIOD))
        with engine.connect() as conn:
            quarantined = {
                (t, r[0], r[1])
                for t in ("mhs001_mpi", "mhs101_referral", "mhs604_prim_diag")
                for r in conn.execute(
                    sa.text(
                        f'SELECT "{contracts[t].key[0] if contracts[t].key else "ServiceRequestID"}", '
                        f"_rule_id FROM {quarantine_view(t)}"
                    )
                )
            }
    finally:
        engine.dispose()
    return outcome, quarantined


@pytest.mark.parametrize("case", HOSTILE, ids=lambda h: f"{h[3]}-{h[5]}")
def test_hostile_value_is_a_record_rejection_with_its_v6_rule(warehouse, case):
    outcome, quarantined = warehouse
    table, _key_col, key, _col, _value, rule = case
    assert (table, key, rule) in quarantined
    assert outcome.failures.get(rule, 0) >= 1


def test_clean_rows_pass_every_format_rule(warehouse):
    outcome, quarantined = warehouse
    assert ("mhs001_mpi", "P1", "MHS00169") not in quarantined
    assert not any(k in ("R1",) and r in ("MHS10109", "MHS60414") for _t, k, r in quarantined)
    # the valid SNOMED CT diagnosis (scheme 06) and the ICD-10 code F32.1 pass MHS60414
    assert outcome.failures.get("MHS60414") == 1


def _spec(name: str):
    return next(s for s in table_specs(REPO / "dbt_project") if s.idb_table == name)


def test_csv_writer_refuses_control_characters_and_never_names_the_value(tmp_path):
    spec = _spec("MHS001MPI")
    row = {c.name: None for c in spec.columns}
    row.update(LocalPatientID="P1", NHSNumber="9434765919", Postcode="WR5\r\n2AB")
    table = pa.Table.from_pylist([row], schema=spec.arrow_schema)
    with pytest.raises(FormatError) as err:
        write_csv(table, spec, tmp_path / "MHS001MPI.csv")
    assert "Postcode" in str(err.value) and "control character" in str(err.value)
    assert "WR5" not in str(err.value)
    assert_no_nhs_number(str(err.value))


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1", "-1+2", "@SUM(A1)", "'quoted"])
def test_csv_cells_that_a_spreadsheet_would_run_are_escaped_and_read_back_unchanged(tmp_path, value):
    spec = _spec("MHS202CareActivity")
    row = {c.name: None for c in spec.columns}
    row.update(CareActID="A1", CareContactID="C1", UnitofMeasurement_UCUM=value)
    table = pa.Table.from_pylist([row], schema=spec.arrow_schema)
    path = tmp_path / "MHS202CareActivity.csv"
    write_csv(table, spec, path)
    raw = path.read_text(encoding="utf-8")
    cells = [c.strip('"') for line in raw.splitlines() for c in line.split('","')]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert not CONTROL.search(raw)
    assert read_csv(path, spec).column("UnitofMeasurement_UCUM").to_pylist() == [value]


def test_finance_workbook_stores_formula_like_text_as_text(tmp_path):
    from openpyxl import Workbook, load_workbook

    from mhsds_pipeline.finance.report import _excel_value

    wb = Workbook()
    ws = wb.active
    ws.append([_excel_value(v) for v in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "plain", 12.5)])
    wb.save(tmp_path / "t.xlsx")
    cells = [c.value for c in load_workbook(tmp_path / "t.xlsx").active[1]]
    assert cells == ["'=1+1", "'+cmd", "'-2+3", "'@SUM(A1)", "plain", 12.5]
    assert all(c.data_type != "f" for c in load_workbook(tmp_path / "t.xlsx").active[1])


# ------------------------------------------------------------------------- organisations (item 4)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MHSDS_ORG_ID_PROVIDER": "not an org!'"}, "not an ODS organisation code"),
        ({"MHSDS_ORG_ID_PROVIDER": "RXY", "MHSDS_ORG_ID_SUBMIT": "RXY"}, "not an organisation this trust"),
        ({"MHSDS_ORG_ID_SUBMIT": "9434765919"}, "not an ODS organisation code"),
        ({"MHSDS_ALLOWED_ORG_IDS": "R1A,bad code"}, "MHSDS_ALLOWED_ORG_IDS entry 2"),
    ],
)
def test_bad_organisation_is_a_configuration_error_before_extraction(
    tmp_settings, tmp_path, monkeypatch, env, needle
):
    from mhsds_pipeline import pipeline

    output = point_env_at(monkeypatch, tmp_settings).output_dir
    assert (output, tmp_settings.data_dir) == (tmp_path / "output", tmp_path / "data")
    (output / "2026-10").mkdir(parents=True)
    (output / "2026-10" / "manifest.json").write_text('{"last": "good"}')
    before = tree_snapshot(output)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigurationError) as err:
        pipeline.extract("2026-10")
    message = str(err.value)
    assert needle in message and "nothing was extracted" in message
    assert_no_nhs_number(message)
    assert "9434765919" not in message
    assert not (tmp_path / "data").exists()  # no landing zone, no warehouse
    assert_tree_unchanged(output, before)


def test_header_rule_checks_the_ods_format_too():
    by_id = {r.id: r for r in load_catalogue().rules}
    assert by_id["MHS00029"].column == "OrgIDProvider" and by_id["MHS00029"].severity == "file rejected"
    assert by_id["MHS00032"].column == "OrgIDSubmit" and by_id["MHS00032"].check["pattern"] == "ods"
