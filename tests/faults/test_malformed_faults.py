"""Malformed EPR cells (issue 10, item 8): errors people can act on, nothing lost, nothing echoed.

A SQLite EPR is dynamically typed, so a DATE column can hold '2026-10-32' or 'not a date' and an
INTEGER column 'forty five' or 1.5. Before, the first such cell aborted the month with an error
naming no table, column or row and echoing the value (or, for 1.5, silently truncated it to 1).

* a cell that cannot be read as its contract type is a record rejection: the row is quarantined
  with the v6 format rule of the MHSDS column it feeds (or the table's LOCAL_*_SOURCE_CELL rule),
  its dependants follow, and every extracted row is published or quarantined;
* an unreadable key column stops the run with an error naming table, column, rule and the
  pseudonymised row key, and the last good outputs stay byte-identical;
* the raw value of a bad cell appears in no log, exception text or output.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _fault_helpers import REPO, assert_tree_unchanged, tree_snapshot
from conftest import scratch_settings

from mhsds_pipeline import pipeline
from mhsds_pipeline.extract import UnreadableCellError
from mhsds_pipeline.privacy import pseudonymise
from mhsds_pipeline.source_cells import parse_value
from mhsds_pipeline.synthetic.generator import generate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PERIOD = "2026-10"
NHS_LIKE = "9990000026"  # 999 test range, Modulus 11 valid: an identifier in the wrong column
IN_SCOPE_REFERRAL = (
    "received_at < '2026-11-01' AND (discharged_at IS NULL OR discharged_at >= '2026-10-01') "
    "AND (rejected_on IS NULL OR rejected_on >= '2026-10-01')"
)
OCT_CONTACT = "start_at >= '2026-10-01' AND start_at < '2026-11-01'"
#: distinctive raw values planted below: none may appear in any log, error or output
RAW_VALUES = ("not a date", NHS_LIKE, "2026-10-32", "forty five", "last tuesday", "2026-02-30")


def _one(con: sqlite3.Connection, sql: str) -> str:
    row = con.execute(sql).fetchone()
    assert row is not None, sql
    return row[0]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One month with malformed cells planted in a scale-0.02 synthetic EPR, run end to end."""
    base = tmp_path_factory.mktemp("malformed")
    settings = scratch_settings(base)
    generate(settings.source_url, scale=0.02, months=1, end_period=PERIOD, out_dir=base / "truth")
    con = sqlite3.connect(base / "epr.sqlite")
    assert not con.execute("SELECT 1 FROM patients WHERE nhs_number = ?", [NHS_LIKE]).fetchone()
    patients = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT patient_id FROM referrals WHERE {IN_SCOPE_REFERRAL} AND patient_id IN "
            "(SELECT patient_id FROM patients GROUP BY patient_id HAVING COUNT(*) = 1) ORDER BY patient_id LIMIT 3"
        )
    ]
    contacts = [
        r[0]
        for r in con.execute(
            f"SELECT appointment_id FROM appointments WHERE {OCT_CONTACT} AND recorded_at < '2026-11-01' "
            "GROUP BY appointment_id HAVING COUNT(*) = 1 ORDER BY appointment_id LIMIT 2"
        )
    ]
    activity = _one(
        con,
        f"SELECT intervention_id FROM interventions WHERE appointment_id IN (SELECT appointment_id FROM "
        f"appointments WHERE {OCT_CONTACT}) AND appointment_id NOT IN ('{contacts[0]}', '{contacts[1]}') "
        "GROUP BY intervention_id HAVING COUNT(*) = 1 ORDER BY intervention_id LIMIT 1",
    )
    # Unreadable (binary) cells in required text columns that are neither key nor link: the
    # error-level not_null tests of WardCode and PrimDiag skip them, the gate quarantines them.
    with open(base / "truth" / "ground_truth.csv", newline="") as fh:
        malformed_spells = sorted({r["epr_key"] for r in csv.DictReader(fh) if r["rule"] == "MALFORMED_DATE"})
    # on a spell the generator left clean, so the stay's only problem is the cell planted here
    ward_stay = con.execute(
        "SELECT ward_stay_id FROM ward_movements WHERE start_at < '2026-11-01' AND (end_at IS NULL OR "
        f"end_at >= '2026-10-01') AND admission_id NOT IN ({', '.join('?' * len(malformed_spells))}) "
        "GROUP BY ward_stay_id HAVING COUNT(*) = 1 ORDER BY ward_stay_id LIMIT 1",
        malformed_spells,
    ).fetchone()[0]
    diagnosis = _one(
        con,
        f"SELECT diagnosis_id FROM diagnoses WHERE \"rank\" = 'P' AND diagnosed_at < '2026-10-01' AND referral_id IN "
        f"(SELECT referral_id FROM referrals WHERE {IN_SCOPE_REFERRAL}) ORDER BY diagnosis_id LIMIT 1",
    )
    planted = {
        "ward_code": ward_stay,  # binary bytes in a mandatory text column
        "diag_code": diagnosis,  # binary bytes in the diagnosis code (part of the MHS604 key)
        "dob": patients[0],  # impossible to read: text in a date column
        "death": patients[1],  # an NHS-number-like value in a date column
        "updated": patients[2],  # text in a timestamp that feeds no MHSDS column
        "date": contacts[0],  # an impossible date
        "int": contacts[1],  # text in an integer column
        "float": activity,  # a fraction in an integer column (was truncated silently)
    }
    con.execute("UPDATE patients SET date_of_birth = 'not a date' WHERE patient_id = ?", [planted["dob"]])
    con.execute("UPDATE patients SET date_of_death = ? WHERE patient_id = ?", [NHS_LIKE, planted["death"]])
    con.execute("UPDATE patients SET updated_at = 'last tuesday' WHERE patient_id = ?", [planted["updated"]])
    con.execute(
        "UPDATE appointments SET start_at = '2026-10-32 09:00:00' WHERE appointment_id = ?", [planted["date"]]
    )
    con.execute(
        "UPDATE appointments SET duration_minutes = 'forty five' WHERE appointment_id = ?", [planted["int"]]
    )
    con.execute(
        "UPDATE interventions SET duration_minutes = 1.5 WHERE intervention_id = ?", [planted["float"]]
    )
    con.execute(
        "UPDATE ward_movements SET ward_code = X'FF00FE' WHERE ward_stay_id = ?", [planted["ward_code"]]
    )
    con.execute("UPDATE diagnoses SET code = X'FFFE' WHERE diagnosis_id = ?", [planted["diag_code"]])
    planted["diag_key"] = con.execute(
        "SELECT referral_id, substr(diagnosed_at, 1, 19) FROM diagnoses WHERE diagnosis_id = ?",
        [planted["diag_code"]],
    ).fetchone()
    con.commit()
    con.close()

    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        summary = pipeline.run_all(PERIOD, "malformed", settings)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    return {"settings": settings, "base": base, "planted": planted, "summary": summary, "logs": capture.lines}


def _quarantine(run, table: str) -> list[dict]:
    path = run["settings"].output_dir / PERIOD / "quarantine" / f"{table}.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def _rules_of(rows: list[dict], key_col: str, key: str) -> set[str]:
    return {r["_rule_id"] for r in rows if r[key_col] == key}


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("value", "arrow_type", "expected"),
    [
        ("2026-02-30", pa.date32(), (None, "impossible_date")),
        ("not a date", pa.date32(), (None, "not_a_date")),
        ("2026-10-05", pa.date32(), (date(2026, 10, 5), None)),
        ("2026-10-32 09:00:00", pa.timestamp("us"), (None, "impossible_timestamp")),
        ("2026-10-05 25:00:00", pa.timestamp("us"), (None, "impossible_timestamp")),
        ("yesterday", pa.timestamp("us"), (None, "not_a_timestamp")),
        ("abc", pa.int64(), (None, "not_an_integer")),
        (1.5, pa.int64(), (None, "not_a_whole_number")),
        (30.0, pa.int64(), (30, None)),
        ("45", pa.int64(), (45, None)),
        (2**64, pa.int64(), (None, "integer_out_of_range")),
        (b"\xff\xfe", pa.string(), (None, "not_text")),
        (12, pa.string(), ("12", None)),
        (None, pa.date32(), (None, None)),
    ],
)
def test_cells_parse_to_their_contract_type_or_name_a_problem(value, arrow_type, expected):
    assert parse_value(value, arrow_type) == expected


# ------------------------------------------------------------------------------ record rejections


def test_malformed_cells_do_not_abort_the_month(run):
    assert run["summary"]["publish"]["version"]
    gate = json.loads((run["settings"].output_dir / PERIOD / "dq" / "gate.json").read_text())
    assert gate["status"] == "passed"


@pytest.mark.parametrize(
    ("table", "key_col", "planted", "rule"),
    [
        ("MHS001MPI", "LocalPatientID", "dob", "MHS00167"),  # PersonBirthDate: incorrect data format
        ("MHS001MPI", "LocalPatientID", "death", "MHS00140"),  # PersDeathDate
        ("MHS001MPI", "LocalPatientID", "updated", "LOCAL_MHS001_SOURCE_CELL"),  # no MHSDS item
        ("MHS201CareContact", "CareContactID", "date", "MHS20107"),  # CareContDate
        ("MHS201CareContact", "CareContactID", "int", "MHS20114"),  # ClinContDurOfCareCont
        ("MHS202CareActivity", "CareActID", "float", "MHS20206"),  # ClinContactDurOfCareAct
    ],
)
def test_each_malformed_cell_quarantines_its_row_with_the_rule(run, table, key_col, planted, rule):
    key = run["planted"][planted]
    rows = _quarantine(run, table)
    assert rule in _rules_of(rows, key_col, key)
    published = pq.read_table(run["settings"].output_dir / PERIOD / "mhsds" / f"{table}.parquet")
    assert key not in published.column(key_col).to_pylist()
    # the bad cell is NULL in the quarantined row: no invented value, no truncated 1.5 -> 1
    column = {"dob": "PersonBirthDate", "death": "PersDeathDate", "date": "CareContDate"}.get(planted)
    column = column or {"int": "ClinContDurOfCareCont", "float": "ClinContactDurOfCareAct"}.get(planted)
    if column:
        assert {r[column] for r in rows if r[key_col] == key} == {None}


def test_binary_cell_in_a_required_text_column_is_quarantined_not_a_failed_build(run):
    """WardCode and PrimDiag are mandatory (blank rules MHS50247 / MHS60406), but an unreadable
    cell there was not blank at source: the row is quarantined by LOCAL_*_SOURCE_CELL, the blank
    rule does not also claim it, and the dbt build (structural tests only) does not fail."""
    stays = _quarantine(run, "MHS502WardStay")
    assert "LOCAL_MHS502_SOURCE_CELL" in _rules_of(stays, "WardStayID", run["planted"]["ward_code"])
    assert {r["WardCode"] for r in stays if r["WardStayID"] == run["planted"]["ward_code"]} == {None}
    referral, coded = run["planted"]["diag_key"]
    diags = [
        r
        for r in _quarantine(run, "MHS604PrimDiag")
        if r["ServiceRequestID"] == referral and str(r["CodedDiagTimestamp"])[:19] == coded
    ]
    assert "LOCAL_MHS604_SOURCE_CELL" in {r["_rule_id"] for r in diags}
    assert {r["PrimDiag"] for r in diags} == {None}
    assert "MHS60406" not in {r["_rule_id"] for r in diags}
    assert "MHS50247" not in _rules_of(stays, "WardStayID", run["planted"]["ward_code"])
    results = pq.read_table(run["settings"].output_dir / PERIOD / "dq" / "dq_results.parquet").to_pylist()
    assert [r["status"] for r in results if r["source"] == "dbt" and r["status"] != "passed"] == []


def test_dependants_of_a_rejected_row_follow_by_group_rejection(run):
    referrals = _quarantine(run, "MHS101Referral")
    mine = [r for r in referrals if r["LocalPatientID"] == run["planted"]["dob"]]
    assert mine and all(r["_cause"] == "rejected_parent" for r in mine if r["_rule_id"] == "MHS10101")
    assert "MHS10101" in {r["_rule_id"] for r in mine}


def test_rows_reconcile_extracted_published_quarantined(run):
    gate = json.loads((run["settings"].output_dir / PERIOD / "dq" / "gate.json").read_text())
    extract = json.loads((run["settings"].landing_dir(PERIOD) / "_extract.json").read_text())
    sources = gate["reconciliation"]["sources"]
    for epr_table, rec in sources.items():
        assert rec["balanced"], rec
        assert rec["extracted"] == extract["row_counts"][epr_table]
        assert rec["extracted"] == rec["published"] + rec["quarantined"]
    # the generator's own planted impossible dates (MALFORMED_DATE) come on top of the cells above
    with open(run["base"] / "truth" / "ground_truth.csv", newline="") as fh:
        generated = sum(
            1 for r in csv.DictReader(fh) if r["rule"] == "MALFORMED_DATE" and r["period"] == PERIOD
        )
    assert generated >= 1
    assert extract["cell_errors"] == {
        "admissions": {"planned_discharge_on": {"impossible_date": generated}},
        "appointments": {"duration_minutes": {"not_an_integer": 1}, "start_at": {"impossible_timestamp": 1}},
        "diagnoses": {"code": {"not_text": 1}},
        "interventions": {"duration_minutes": {"not_a_whole_number": 1}},
        "patients": {
            "date_of_birth": {"not_a_date": 1},
            "date_of_death": {"not_a_date": 1},
            "updated_at": {"not_a_timestamp": 1},
        },
        "ward_movements": {"ward_code": {"not_text": 1}},
    }


def test_logs_name_table_column_and_rule_never_the_value(run):
    text = "\n".join(run["logs"])
    assert "appointments.start_at" in text and "MHS20107" in text
    for value in RAW_VALUES:
        assert value not in text


def _texts_under(root: Path):
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        if path.suffix == ".parquet":
            yield path, json.dumps(pq.read_table(path).to_pylist(), default=str)
        elif path.suffix in (".json", ".html", ".csv", ".jsonl", ".txt", ".md"):
            yield path, path.read_text(errors="replace")


def test_no_raw_value_in_dq_outputs_landing_or_quarantine(run):
    roots = [run["settings"].output_dir, run["settings"].landing_dir(PERIOD), run["settings"].data_dir / "dq"]
    seen = 0
    for root in roots:
        for path, text in _texts_under(root):
            seen += 1
            for value in RAW_VALUES:
                assert value not in text, (path, value)
    assert seen > 20


# ------------------------------------------------------------------------------ structural failures


def test_unreadable_key_column_stops_with_an_actionable_error_and_keeps_outputs(run, caplog):
    settings = run["settings"]
    before = tree_snapshot(settings.output_dir)
    source = Path(settings.source_url.removeprefix("sqlite:///"))
    backup = source.with_suffix(".bak")
    shutil.copy(source, backup)
    try:
        con = sqlite3.connect(source)
        pid, practice = con.execute(
            "SELECT patient_id, practice_code FROM gp_registrations WHERE deregistered_on IS NULL AND patient_id IN "
            f"(SELECT patient_id FROM referrals WHERE {IN_SCOPE_REFERRAL}) ORDER BY patient_id LIMIT 1"
        ).fetchone()
        con.execute(
            "UPDATE gp_registrations SET registered_on = '2026-02-30' WHERE patient_id = ? AND practice_code = ?",
            [pid, practice],
        )
        con.commit()
        con.close()
        with caplog.at_level(logging.DEBUG), pytest.raises(UnreadableCellError) as err:
            pipeline.run_all(PERIOD, "malformed-key", settings)
    finally:
        shutil.move(backup, source)
    message = str(err.value)
    assert "gp_registrations.registered_on" in message
    assert "MHS00210" in message  # StartDateGMPRegistration: incorrect data format
    assert pseudonymise("gp_registrations", pid, practice, "2026-02-30") in message
    assert PERIOD in message and "re-run the extract" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained parse error
    for value in (*RAW_VALUES, pid):
        assert value not in message
        assert value not in caplog.text
    assert_tree_unchanged(settings.output_dir, before)


def test_binary_key_is_refused_naming_the_v6_rule(run, tmp_path):
    settings = scratch_settings(tmp_path)
    shutil.copy(Path(run["settings"].source_url.removeprefix("sqlite:///")), tmp_path / "epr.sqlite")
    con = sqlite3.connect(tmp_path / "epr.sqlite")
    contact = _one(
        con, f"SELECT appointment_id FROM appointments WHERE {OCT_CONTACT} ORDER BY appointment_id LIMIT 1"
    )
    con.execute("UPDATE appointments SET appointment_id = X'FF00FE' WHERE appointment_id = ?", [contact])
    con.commit()
    con.close()
    with pytest.raises(UnreadableCellError) as err:
        pipeline.extract(PERIOD, settings)
    assert "appointments.appointment_id" in str(err.value) and "MHS20102" in str(err.value)
    assert "pk_" in str(err.value)
    assert not (settings.landing_dir(PERIOD) / "_extract.json").exists()  # nothing loadable


# ------------------------------------------------------------------------------ the mapping, stated once


def test_cell_mapping_matches_the_contracts_catalogue_and_dbt():
    from mhsds_pipeline.contracts import load_contracts
    from mhsds_pipeline.quality.reconcile import SOURCES
    from mhsds_pipeline.quality.rules import load_catalogue
    from mhsds_pipeline.source import schema as epr
    from mhsds_pipeline.source_cells import MART_KEYS, MHSDS_COLUMNS, format_rule_ids, source_cell_rule_id
    from mhsds_pipeline.warehouse import CELL_ERROR_COLUMNS, ensure_cell_errors_sql

    contracts = load_contracts(REPO / "dbt_project")
    rules = format_rule_ids()
    ids = {r.id for r in load_catalogue().rules}
    for model, keys in MART_KEYS.items():  # the row key the load computes is the engine's
        assert tuple(k[0] for k in keys) == contracts[model].key, model
        assert source_cell_rule_id(model) in ids, model
    for (epr_table, epr_column), feeds in MHSDS_COLUMNS.items():
        assert epr_column in epr.metadata.tables[epr_table].c, (epr_table, epr_column)
        for model, column in feeds.items():
            assert model in SOURCES[epr_table] and (model, column) in rules, (epr_table, epr_column, model)
    ensured = " ".join(ensure_cell_errors_sql())
    assert all(f"{c} VARCHAR" in ensured for c in CELL_ERROR_COLUMNS)
