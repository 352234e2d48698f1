"""DQMI: scoring arithmetic (published worked examples), the versioned item seed, VODIM counts pushed
down to a hand-built warehouse (DuckDB, and PostgreSQL when reachable), outputs and dq_results rows."""

from __future__ import annotations

import csv
import re
import shutil
import uuid
from datetime import date, datetime, time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from conftest import postgres_available

from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.identifiers import nhs_number_check_digit, sctid_is_valid
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.dqmi import (
    DQMI_PARQUET_SCHEMA,
    VodimCounts,
    compute_dqmi,
    coverage_ratio,
    dataset_score,
    defaults_in_excess,
    item_score,
    item_score_from_vodim,
    load_dqmi_config,
    render_dqmi_html,
    snomed_ct_coverage_pct,
    to_check_results,
    write_dqmi,
)
from mhsds_pipeline.quality.results import to_table

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "dbt_project" / "seeds" / "reference"
MODELS_YML = REPO / "dbt_project" / "models" / "marts" / "mhsds" / "_mhsds__models.yml"
PERIOD = ReportingPeriod(2026, 10)
#: A warehouse relation name (dbt model, e.g. mhs101_referral): never in what a person reads.
RELATION_NAME = re.compile(r"\bmhs\d{3}_")


def _idb_of() -> dict[str, str]:
    return {m: c.idb_table for m, c in load_contracts(REPO / "dbt_project").items()}


# --- Worked examples (DQMI methodology Appendix 1, dqmi_snomed.md A1.3 / A1.5) ----------------


def test_worked_example_threshold_2pct_gives_94():
    # 2,500 records, 2,400 valid & complete, 100 defaults, threshold 2% -> allowed 50, excess 50.
    assert defaults_in_excess(100, 2, 2500) == 50
    assert item_score(2400, 100, 2, 2500) == 94.0


def test_worked_example_threshold_0pct_gives_76():
    # 2,500 records, 2,000 valid & complete, 100 defaults, threshold 0% -> excess 100.
    assert defaults_in_excess(100, 0, 2500) == 100
    assert item_score(2000, 100, 0, 2500) == 76.0


def test_worked_example_threshold_100pct_gives_80():
    # 1,000 records, 800 valid & complete, 800 defaults, threshold 100% -> excess 0.
    assert defaults_in_excess(800, 100, 1000) == 0
    assert item_score(800, 800, 100, 1000) == 80.0


def test_worked_example_50000_records_100_defaults_no_excess():
    # 50,000 records, 100 defaults, threshold 2% -> 1,000 allowed, excess 0.
    assert defaults_in_excess(100, 2, 50000) == 0


def test_worked_example_dataset_score_47_2():
    # 12 items, mean item score 9.7/12, mean coverage 7/12 -> DQMI 47.2 (scores here 0-100).
    scores = [100.0] * 9 + [70.0, 0.0, 0.0]
    coverages = [1.0] * 5 + [2 / 3] * 3 + [0.0] * 4
    assert sum(scores) == 970 and sum(coverages) == pytest.approx(7)
    assert round(dataset_score(scores, coverages), 1) == 47.2


def test_score_from_vodim_counts_other_as_valid_defaults_up_to_threshold():
    counts = VodimCounts(valid=80, other=5, default=10, invalid=3, missing=2)
    assert counts.total == 100 and counts.valid_and_complete == 95
    assert item_score_from_vodim(counts, 0) == 85.0  # all 10 defaults in excess
    assert item_score_from_vodim(counts, 4) == 89.0  # 4 allowed, 6 in excess
    assert item_score_from_vodim(counts, None) == 85.0  # '-' : no default allowance
    assert item_score_from_vodim(VodimCounts(), 0) is None  # no records: not scored


def test_scoring_edge_cases():
    assert dataset_score([], []) is None
    with pytest.raises(ValueError, match="one of each"):
        dataset_score([90.0], [])
    with pytest.raises(ValueError, match="inconsistent"):
        item_score(10, 20, 0, 100)
    assert coverage_ratio(0, 0) == 1.0 and coverage_ratio(50, 100) == 0.5 and coverage_ratio(150, 100) == 1.0
    assert snomed_ct_coverage_pct(4, 5) == 80.0 and snomed_ct_coverage_pct(0, 0) is None


# --- The versioned seed ------------------------------------------------------------------------


def _mart_columns() -> dict[str, set[str]]:
    models = yaml.safe_load(MODELS_YML.read_text())["models"]
    return {m["name"]: {c["name"] for c in m["columns"]} for m in models}


def test_seed_items_point_at_real_mart_columns():
    config = load_dqmi_config(PERIOD, SEEDS)
    marts = _mart_columns()
    idb = _idb_of()
    assert len(config.items) >= 20
    assert dict(config.idb_tables) == idb  # the one mapping: the dbt contracts' meta.idb_table
    for item in config.items:
        assert item.column_name in marts[item.table_name], item.item_id
        assert item.idb_table == idb[item.table_name], item.item_id
        if item.rule == "date_not_before":
            assert item.rule_arg in marts[item.table_name]
        assert item.valid_values or item.rule in {
            "ods_code",
            "nhs_number",
            "birth_date",
            "date_not_before",
            "date_in_referral",
            "time_not_on_hour",
        }
        if item.rule == "time_not_on_hour":  # the "(hour)" items read TIME columns
            types = dict(load_contracts(REPO / "dbt_project")[item.table_name].columns)
            assert types[item.column_name] == "time", item.item_id
    hour_items = {
        i.item_id: (i.idb_table, i.column_name) for i in config.items if i.rule == "time_not_on_hour"
    }
    assert hour_items == {
        "care_contact_time_hour": ("MHS201CareContact", "CareContTime"),
        "referral_received_time_hour": ("MHS101Referral", "ReferralRequestReceivedTime"),
        "service_discharge_time_hour": ("MHS101Referral", "ServDischTime"),
    }
    assert config.snomed is not None and config.snomed.valid_values == ("5", "6")
    assert config.snomed.rule_arg in marts and config.dataset_target == 70.0
    assert (config.snomed.idb_table, config.snomed.rule_arg_idb_table) == (
        "MHS201CareContact",
        "MHS202CareActivity",
    )
    assert config.version == "2025.09"


def test_seed_is_versioned_by_period():
    before = {i.item_id for i in load_dqmi_config(ReportingPeriod(2021, 6), SEEDS).items}
    now = {i.item_id for i in load_dqmi_config(PERIOD, SEEDS).items}
    assert "gender_identity" not in before and "gender_identity" in now
    assert "service_team_type" not in before  # v6 MHS902 only from April 2024


def test_seed_other_default_must_agree_with_code_list(tmp_path):
    for f in SEEDS.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "ref_dqmi_items.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    for r in rows:
        if r["item_id"] == "person_stated_gender":
            r["default_values"] = "X|9"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match="person_stated_gender.*default_values"):
        load_dqmi_config(PERIOD, tmp_path)


# --- A hand-built warehouse with known VODIM counts -------------------------------------------

S, D, TS, TM = sa.String, sa.Date, sa.DateTime, sa.Time


def _valid_nhs_numbers(n: int) -> list[str]:
    out, base = [], 400000000
    while len(out) < n:
        check = nhs_number_check_digit(str(base))
        if check is not None:
            out.append(f"{base}{check}")
        base += 1
    return out


NHS = _valid_nhs_numbers(6)
TABLES: dict[str, dict[str, type]] = {
    "mhs000_header": {"OrgIDProvider": S, "ReportingPeriodStartDate": D, "ReportingPeriodEndDate": D},
    "mhs001_mpi": {
        "LocalPatientID": S,
        "NHSNumber": S,
        "PersonBirthDate": D,
        "Postcode": S,
        "GenderIDCode": S,
        "GenderSameAtBirth": S,
        "Gender": S,
        "EthnicCategory": S,
    },
    "mhs002_gp": {"LocalPatientID": S, "GMPReg": S},
    "mhs101_referral": {
        "ServiceRequestID": S,
        "LocalPatientID": S,
        "OrgIDComm": S,
        "ReferralRequestReceivedDate": D,
        "ServDischDate": D,
        "SourceOfReferralMH": S,
        "PrimReasonReferralMH": S,
        "ClinRespPriorityType": S,
        "ReferClosReason": S,
        "ReferralRequestReceivedTime": TM,
        "ServDischTime": TM,
    },
    "mhs102_other_service_type": {
        "ServiceRequestID": S,
        "OtherCareProfTeamLocalID": S,
        "ReferClosureDate": D,
        "ReferClosReason": S,
    },
    "mhs902_service_team_details": {"CareProfTeamLocalID": S, "ServTeamTypeMH": S},
    "mhs201_care_contact": {
        "CareContactID": S,
        "AttendStatus": S,
        "ConsMechanismMH": S,
        "ActLocTypeCode": S,
        "OrgIDComm": S,
        "CareContTime": TM,
    },
    "mhs202_care_activity": {
        "CareActID": S,
        "CareContactID": S,
        "Procedure": S,
        "FindSchemeInUse": S,
        "Finding": S,
        "Observation": S,
    },
    "mhs501_hosp_prov_spell": {
        "HospProvSpellID": S,
        "StartDateHospProvSpell": D,
        "EstimatedDischDateHospProvSpell": D,
    },
    "mhs502_ward_stay": {"WardStayID": S, "MHAdmittedPatientClass": S},
    "mhs604_prim_diag": {"ServiceRequestID": S, "CodedDiagTimestamp": TS},
    "mhs605_sec_diag": {"ServiceRequestID": S, "CodedDiagTimestamp": TS},
}


def _cols(table: str, *rows: tuple) -> list[dict]:
    names = list(TABLES[table])
    return [dict(zip(names, r, strict=True)) for r in rows]


#: (ReferralRequestReceivedTime, ServDischTime) per referral: 00:00 midnight, XX:00 on the hour (10:00:45
#: too: minute 00), XX:30 and blanks. The discharge time item counts discharged referrals only (R2 R3 R5
#: R7), so R1's 11:00 is not counted.
REFERRAL_TIMES: dict[str, tuple[time | None, time | None]] = {
    "R1": (time(9, 30), time(11, 0)),
    "R2": (time(0, 0), time(0, 0)),
    "R3": (time(14, 0), time(16, 45)),
    "R4": (None, None),
    "R5": (time(23, 59, 59), None),
    "R6": (time(10, 0, 45), None),
    "R7": (time(0, 30), time(17, 0)),
    "R8": (time(12, 0), None),
}

ROWS: dict[str, list[dict]] = {
    "mhs000_header": _cols("mhs000_header", ("R1A", date(2026, 10, 1), date(2026, 10, 31))),
    # id, NHS number, birth date, postcode, gender identity, same at birth, stated gender, ethnicity
    "mhs001_mpi": _cols(
        "mhs001_mpi",
        ("P01", NHS[0], date(1990, 1, 1), "WR2 4GD", "1", "Y", "1", "A"),
        ("P02", NHS[1], date(1905, 11, 1), "b98 1pu", "Z", "N", "2", "C"),
        ("P03", NHS[2], date(1905, 10, 31), "HR1 1AA", "4", "Z", "1", "J1"),
        ("P04", NHS[3], date(2026, 10, 31), "ZZ99 3VZ", "X", "X", "9", "Z"),
        ("P05", NHS[4], date(2026, 11, 1), "zz99 3wz", "5", "Q", "X", "ZA"),
        ("P06", NHS[5], date(2010, 6, 15), "WR24GD", None, "y", "X", "99"),
        ("P07", "9434765918", date(2000, 5, 5), "NOT A PC", None, None, "3", "I"),
        ("P08", "1111111111", date(2000, 5, 5), "DY10 1AB", None, None, " 2 ", "9"),
        ("P09", None, None, None, None, None, None, ""),
        ("P10", "  ", None, "", None, None, "", None),
    ),
    "mhs002_gp": _cols(
        "mhs002_gp",
        ("P01", "M85655"),
        ("P02", "m85601"),
        ("P03", "V81999"),
        ("P04", "V81998"),
        ("P05", "S12345"),
        ("P06", "M8565"),
        ("P07", "MM8565"),
        ("P08", None),
    ),
    # id, patient, commissioner, received, discharged, source, primary reason, priority, closure reason
    # (+ the two times of REFERRAL_TIMES)
    "mhs101_referral": _cols(
        "mhs101_referral",
        *(
            r + REFERRAL_TIMES[r[0]]
            for r in (
                ("R1", "P01", "18C", date(2026, 1, 10), None, "A1", "12", "1", None),
                ("R2", "P04", "15E00", date(2026, 5, 1), date(2026, 10, 15), "B1", "12", None, "01"),
                ("R3", "P06", "VPP00", date(2015, 12, 31), date(2026, 10, 20), "Z9", "04", "2", "10"),
                ("R4", "P02", "18c", date(2026, 9, 1), None, None, "17", None, None),
                ("R5", "P03", "TOOLONG", date(2026, 9, 2), date(2026, 10, 1), "", "99", None, None),
                ("R6", "P05", None, date(2026, 9, 3), None, "M9", "12", "9", None),
                ("R7", "P07", "  ", date(2026, 9, 4), date(2026, 10, 31), "A1", None, None, " 05 "),
                ("R8", "P06", "QHM", date(2026, 9, 5), None, "N3", "12", "3", None),
            )
        ),
    ),
    "mhs102_other_service_type": _cols(
        "mhs102_other_service_type",
        ("R1", "T1", date(2026, 10, 5), "02"),
        ("R1", "T2", None, "03"),
        ("R2", "T1", date(2026, 10, 6), None),
        ("R3", "T3", date(2026, 10, 7), "AB"),
    ),
    "mhs902_service_team_details": _cols(
        "mhs902_service_team_details",
        ("T1", "A01"),
        ("T2", "A03"),
        ("T3", "Z01"),
        ("T4", None),
        ("T5", "F07"),
    ),
    # id, attendance, consultation mechanism, location type, commissioner, contact time
    "mhs201_care_contact": _cols(
        "mhs201_care_contact",
        ("C1", "5", "01", "A01", None, time(0, 0)),
        ("C2", "6", "98", "X01", "18C", time(13, 0)),
        ("C3", "5", "03", "Z99", "VPP00", time(13, 30)),
        ("C4", "3", None, None, None, None),
        ("C5", "1", "02", "B01", None, time(8, 15)),
        ("C6", "6", "11", "L99", None, time(0, 1)),
        ("C7", None, "13", "", None, time(23, 0)),
        ("C8", "5", "1", "A01", None, time(9, 45)),
    ),
    # id, contact, procedure, finding scheme, finding, observation
    "mhs202_care_activity": _cols(
        "mhs202_care_activity",
        ("A1", "C1", "22298006", None, None, None),
        ("A2", "C2", "22298007", "01", "F43.1", None),
        ("A3", "C2", None, "04", "22298006", None),
        ("A4", "C3", "985451000000105:408729009=443390004", None, None, None),
        ("A5", "C4", "22298006", None, None, None),
        ("A6", "C6", "", "01", "22298006", None),
        ("A7", "C8", None, None, None, "720433000"),
        ("A8", "C1", "390773006", None, None, None),
    ),
    "mhs501_hosp_prov_spell": _cols(
        "mhs501_hosp_prov_spell",
        ("S1", date(2026, 10, 1), date(2026, 10, 20)),
        ("S2", date(2026, 10, 10), date(2026, 10, 9)),
        ("S3", date(2026, 10, 10), date(2026, 10, 10)),
        ("S4", date(2026, 10, 2), None),
    ),
    "mhs502_ward_stay": _cols("mhs502_ward_stay", ("W1", "200"), ("W2", "10"), ("W3", None), ("W4", "311")),
    "mhs604_prim_diag": _cols(
        "mhs604_prim_diag",
        ("R1", datetime(2026, 10, 5, 10, 0)),
        ("R2", datetime(2026, 10, 20, 9, 0)),
        ("R2", datetime(2026, 10, 15, 23, 59)),
        ("R99", datetime(2026, 10, 1, 8, 0)),
        ("R1", None),
        ("R4", datetime(2026, 8, 31, 12, 0)),
    ),
    "mhs605_sec_diag": _cols(
        "mhs605_sec_diag", ("R3", datetime(2026, 10, 1, 9, 0)), ("R3", datetime(2015, 12, 30, 9, 0))
    ),
}

#: (valid, other, default, invalid, missing) per item, worked out by hand from ROWS.
EXPECTED: dict[str, tuple[int, int, int, int, int]] = {
    "nhs_number": (6, 0, 0, 2, 2),
    "postcode": (4, 0, 2, 2, 2),
    "person_birth_date": (6, 0, 0, 2, 2),
    "person_stated_gender": (4, 1, 2, 1, 2),
    "gender_identity": (2, 1, 1, 1, 5),
    "gender_same_at_birth": (3, 0, 1, 2, 4),
    "ethnic_category": (3, 2, 1, 2, 2),
    "gp_practice_code": (2, 0, 2, 2, 1),
    "commissioner_referral": (3, 0, 1, 2, 2),
    "source_of_referral": (5, 0, 0, 1, 2),
    "primary_reason_referral": (4, 0, 0, 2, 1),
    "clinical_response_priority": (1, 0, 0, 1, 1),
    "referral_closure_reason": (2, 0, 0, 1, 1),
    "other_service_closure_reason": (1, 0, 0, 1, 1),
    "service_team_type": (2, 0, 0, 2, 1),
    "attendance_status": (6, 0, 0, 1, 1),
    "consultation_mechanism": (4, 1, 0, 2, 1),
    "activity_location_type": (4, 1, 0, 1, 2),
    "commissioner_care_contact": (1, 0, 1, 0, 6),
    "estimated_discharge_date": (2, 0, 0, 1, 1),
    "admitted_patient_class": (2, 0, 0, 1, 1),
    "primary_diagnosis_date": (2, 0, 0, 3, 1),
    "secondary_diagnosis_date": (1, 0, 0, 1, 0),
    # "(hour)" integrity items: V not on the hour, D 00:00 (midnight), I any other XX:00, M blank.
    # Received: V 09:30 23:59:59 00:30; D R2; I 14:00 12:00 and 10:00:45 (minute 00, as NHS Digital's
    # MINUTE() = 0 counts it); M R4.
    "referral_received_time_hour": (3, 0, 1, 3, 1),
    # Discharged R2 00:00 D, R3 16:45 V, R5 blank M, R7 17:00 I; R1's 11:00 is not counted (open referral).
    "service_discharge_time_hour": (1, 0, 1, 1, 1),
    # C1 00:00 D; C2 13:00, C7 23:00 I; C3 13:30, C5 08:15, C6 00:01, C8 09:45 V; C4 M.
    "care_contact_time_hour": (4, 0, 1, 2, 1),
}


def _build_warehouse(engine: sa.Engine, schema: str) -> None:
    meta = sa.MetaData(schema=schema)
    tables = {
        name: sa.Table(name, meta, *(sa.Column(c, t) for c, t in cols.items()))
        for name, cols in TABLES.items()
    }
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        meta.create_all(conn)
        for name, rows in ROWS.items():
            conn.execute(tables[name].insert(), rows)


@pytest.fixture(scope="module")
def duck_url(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("dqmi") / "warehouse.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}")
    try:
        _build_warehouse(engine, "analytics")
    finally:
        engine.dispose()
    return f"duckdb:///{path}"


@pytest.fixture(scope="module")
def duck_result(duck_url):
    return compute_dqmi(duck_url, schema="analytics", period=PERIOD, seed_dir=SEEDS)


def _counts(result) -> dict[str, tuple[int, ...]]:
    return {
        r.item.item_id: (r.counts.valid, r.counts.other, r.counts.default, r.counts.invalid, r.counts.missing)
        for r in result.items
    }


def test_fixture_codes_are_what_the_test_claims():
    assert sctid_is_valid("22298006") and not sctid_is_valid("22298007")
    assert sctid_is_valid("985451000000105") and sctid_is_valid("720433000")


def test_vodim_counts_on_duckdb(duck_result):
    assert duck_result.period == "2026-10" and duck_result.provider == "R1A" and duck_result.submitted
    assert [r.status for r in duck_result.items if r.status == "error"] == []
    assert _counts(duck_result) == EXPECTED


def test_item_scores_and_dataset_score_on_duckdb(duck_result):
    by_id = {r.item.item_id: r for r in duck_result.items}
    assert by_id["postcode"].score == pytest.approx(40.0)  # (4 + 2 - 2 excess) / 10
    assert by_id["person_stated_gender"].score == pytest.approx(50.0)  # (4 + 1 + 2 - 2) / 10
    assert by_id["nhs_number"].score == pytest.approx(60.0) and by_id["nhs_number"].status == "failed"
    assert by_id["referral_closure_reason"].score == pytest.approx(50.0)
    # Time items: populated and not on the hour / records (midnight is a default at a 0% threshold).
    assert by_id["referral_received_time_hour"].score == pytest.approx(37.5)  # 3 / 8
    assert by_id["service_discharge_time_hour"].score == pytest.approx(25.0)  # 1 / 4
    assert by_id["care_contact_time_hour"].score == pytest.approx(50.0)  # 4 / 8
    scores = [r.score for r in duck_result.items]
    assert duck_result.dataset_score == pytest.approx(dataset_score(scores, [1.0] * len(scores)))
    assert duck_result.mean_coverage == 1.0


def test_snomed_ct_coverage_on_duckdb(duck_result):
    s = duck_result.snomed
    # Attended C1, C2, C3, C6, C8; coded: C1 procedure, C2 SNOMED finding, C3 expression focus, C8 observation.
    assert (s.attended_contacts, s.contacts_with_snomed) == (5, 4)
    assert s.coverage_pct == pytest.approx(80.0) and s.status == "passed"


def test_period_defaults_to_header_and_mismatch_is_an_error(duck_url):
    result = compute_dqmi(duck_url, items=["postcode"], seed_dir=SEEDS)
    assert result.period == "2026-10" and [r.item.item_id for r in result.items] == ["postcode"]
    with pytest.raises(ValueError, match="not 2026-11"):
        compute_dqmi(duck_url, period="2026-11", seed_dir=SEEDS)


def test_expected_records_reduce_coverage(duck_url):
    result = compute_dqmi(
        duck_url,
        period=PERIOD,
        items=["postcode", "attendance_status"],
        expected_records={"MHS001MPI": 20},  # IDB name (a warehouse relation name also works)
        seed_dir=SEEDS,
    )
    cov = {r.item.item_id: r.coverage for r in result.items}
    assert cov == {"postcode": 0.5, "attendance_status": 1.0}
    assert result.dataset_score == pytest.approx((40.0 + 75.0) / 2 * 0.75)
    assert "MHS001MPI" in result.coverage_basis and not RELATION_NAME.search(result.coverage_basis)
    assert result.table_records == {"MHS001MPI": 10, "MHS201CareContact": 8}
    by_relation = compute_dqmi(
        duck_url, period=PERIOD, items=["postcode"], expected_records={"mhs001_mpi": 20}, seed_dir=SEEDS
    )
    assert by_relation.items[0].coverage == 0.5


def test_missing_table_marks_items_error_not_crash(tmp_path):
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA analytics"))
            conn.execute(
                sa.text(
                    'CREATE TABLE analytics.mhs000_header ("OrgIDProvider" VARCHAR, "ReportingPeriodStartDate" DATE)'
                )
            )
            conn.execute(sa.text("INSERT INTO analytics.mhs000_header VALUES ('R1A', DATE '2026-10-01')"))
        result = compute_dqmi(engine, period=PERIOD, seed_dir=SEEDS)
    finally:
        engine.dispose()
    assert {r.status for r in result.items} == {"error"}
    assert "did dbt build run" in result.items[0].error
    assert result.dataset_score is None and result.snomed.status == "error"
    rows = to_check_results(result)
    assert {r.status for r in rows} == {"error", "not_applicable"}
    # The reasons name tables by IDB name too: they reach the report and dq_results.
    assert "MHS001MPI" in result.items[0].error
    assert not RELATION_NAME.search(render_dqmi_html(result))
    assert not any(RELATION_NAME.search(f"{r.table_name} {r.description}") for r in rows)


# --- Outputs ----------------------------------------------------------------------------------


def test_write_dqmi_parquet_and_report(duck_result, tmp_path):
    paths = write_dqmi(duck_result, tmp_path / "a")
    table = pq.read_table(paths["parquet"])
    assert table.schema.remove_metadata().equals(DQMI_PARQUET_SCHEMA)
    assert table.num_rows == len(EXPECTED)
    row = {r["item_id"]: r for r in table.to_pylist()}["postcode"]
    assert (row["valid"], row["default"], row["total"], row["item_score"]) == (4, 2, 10, pytest.approx(40.0))
    assert row["met_threshold"] is False and row["threshold"] == 70.0
    # Tables by IDB name (from the dbt contracts), never the warehouse relation.
    assert row["table_name"] == "MHS001MPI"
    tables = set(table.column("table_name").to_pylist())
    assert tables == {_idb_of()[t] for t in TABLES if t not in ("mhs000_header", "mhs202_care_activity")}
    assert {"MHS101Referral", "MHS201CareContact", "MHS902ServiceTeamDetails"} <= tables
    meta = table.schema.metadata[b"dqmi"].decode()
    assert '"dataset_score"' in meta and "snomed_ct_coverage" in meta
    assert not RELATION_NAME.search(meta) and "[S" not in meta and "/work/" not in meta

    report = paths["html"].read_text()
    assert f"{duck_result.dataset_score:.1f}" in report
    assert "SNOMED CT coverage" in report and "80.0%" in report
    for word in ("Valid", "Other", "Default", "Invalid", "Missing", "2025.09", "Appendix 1"):
        assert word in report
    assert "<script" not in report and "http" not in report.replace("https://", "")  # self-contained
    for shown in (
        "MHS001MPI.<wbr>Postcode",
        "MHS101Referral.",
        "MHS201CareContact.AttendStatus",
        "MHS202CareActivity",
    ):
        assert shown in report, shown
    assert not RELATION_NAME.search(report), RELATION_NAME.search(report)
    # No developer text: source tags, local paths or file references, calls to make.
    assert not re.search(r"\[S\d+", report)
    for dev in ("/work/", ".md", ".csv", ".py", "write_dqmi", "disclosure_controlled=", "DERIVED"):
        assert dev not in report, dev
    assert "Data Quality Maturity Index (DQMI) methodology" in report  # the method, cited in words
    assert "table-layout:fixed" in report  # the wide items table fits the page

    # No patient identifiers: none of the fixture's NHS numbers, postcodes or local ids appear.
    blob = paths["parquet"].read_bytes() + report.encode()
    for secret in [*NHS, "9434765918", "WR2 4GD", "ZZ99 3VZ", "P01"]:
        assert secret.encode() not in blob

    # Deterministic: the same result writes the same bytes.
    again = write_dqmi(duck_result, tmp_path / "b")
    assert again["parquet"].read_bytes() == paths["parquet"].read_bytes()
    assert again["html"].read_bytes() == paths["html"].read_bytes()


def test_disclosure_controlled_report_suppresses_small_counts(duck_result):
    report = render_dqmi_html(duck_result, disclosure_controlled=True)
    assert "<td class='n'>*</td>" in report and "disclosure-controlled" in report


def test_check_results_rows(duck_result):
    rows = to_check_results(duck_result)
    assert len(rows) == len(EXPECTED) + 2
    assert {r.source for r in rows} == {"dqmi"} and {r.measure for r in rows} == {"valid"}
    by_id = {r.check_id: r for r in rows}
    pc = by_id["dqmi.postcode"]
    assert pc.table_name == "MHS001MPI" and by_id["dqmi.attendance_status"].table_name == "MHS201CareContact"
    assert by_id["dqmi.snomed_ct_coverage"].table_name == "MHS201CareContact"
    idb_names = set(_idb_of().values())
    assert {r.table_name for r in rows} - {None} <= idb_names
    assert not any(RELATION_NAME.search(f"{r.table_name} {r.description}") for r in rows)
    assert (pc.numerator, pc.denominator, pc.rate, pc.threshold, pc.status) == (
        4,
        10,
        pytest.approx(0.4),
        0.7,
        "failed",
    )
    assert (
        by_id["dqmi.snomed_ct_coverage"].numerator == 4
        and by_id["dqmi.snomed_ct_coverage"].status == "passed"
    )
    assert by_id["dqmi.dataset_score"].rate == pytest.approx(duck_result.dataset_score / 100)
    assert to_table("2026-10", "run-1", rows).num_rows == len(rows)  # fits DQ_RESULTS_SCHEMA
    # The "(hour)" items are NHS Digital integrity measures: their rows say so, with the measure.
    cc = by_id["dqmi.care_contact_time_hour"]
    assert (cc.dimension, cc.table_name, cc.column_name) == ("integrity", "MHS201CareContact", "CareContTime")
    assert (cc.numerator, cc.denominator, cc.rate) == (4, 8, pytest.approx(0.5))
    assert "on the hour 3 of 7 populated times (42.9%, of which at 00:00: 1)" in cc.description
    assert pc.dimension == "validity"


# --- "(hour)" time items: a tiny table worked out by hand ---------------------------------------


@pytest.mark.parametrize("column_type", ["TIME", "VARCHAR"])
def test_time_item_scores_on_the_hour_times_by_hand(tmp_path, column_type):
    """00:00 (midnight), 14:00 (on the hour), 14:30 and a blank: V 1, D 1, I 1, M 1 of 4.

    Item score = (V + O + D - defaults in excess) / records x 100 = (1 + 0 + 1 - 1) / 4 x 100 = 25.0
    (the one default is in excess at the 0% threshold). NHS Digital's integrity measure: 2 of the
    3 populated times on the hour (66.7%), 1 at midnight. A text column (e.g. a staging copy) is
    cast to TIME, and its empty string is blank like NULL.
    """
    blank = "NULL" if column_type == "TIME" else "''"
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA analytics"))
            conn.execute(
                sa.text(
                    'CREATE TABLE analytics.mhs000_header ("OrgIDProvider" VARCHAR, "ReportingPeriodStartDate" DATE)'
                )
            )
            conn.execute(sa.text("INSERT INTO analytics.mhs000_header VALUES ('R1A', DATE '2026-10-01')"))
            conn.execute(
                sa.text(f'CREATE TABLE analytics.mhs201_care_contact ("CareContTime" {column_type})')
            )
            conn.execute(
                sa.text(
                    "INSERT INTO analytics.mhs201_care_contact VALUES "
                    f"('00:00:00'), ('14:00:00'), ('14:30:00'), ({blank})"
                )
            )
        result = compute_dqmi(engine, period=PERIOD, items=["care_contact_time_hour"], seed_dir=SEEDS)
    finally:
        engine.dispose()
    (item,) = result.items
    assert _counts(result) == {"care_contact_time_hour": (1, 0, 1, 1, 1)}
    assert item.score == pytest.approx(25.0) and item.status == "failed"
    assert item.defaults_in_excess == 1 and item.scored_records == 1
    assert result.dataset_score == pytest.approx(25.0)
    from mhsds_pipeline.quality.dqmi.scoring import on_the_hour_pct

    assert on_the_hour_pct(item.counts) == pytest.approx(200 / 3)
    report = render_dqmi_html(result)
    assert "on the hour: 66.7% of populated times" in report
    assert "a time recorded on the hour (XX:00)" in report  # what Invalid means, in the categories table
    assert "integrity.sql" not in report and "[NHSDigital" not in report  # code citations stay in the seed


def test_time_item_seed_rows_are_checked(tmp_path):
    for f in SEEDS.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "ref_dqmi_items.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    for r in rows:
        if r["item_id"] == "care_contact_time_hour":
            r["default_values"] = "00:30"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match="care_contact_time_hour.*HH:00"):
        load_dqmi_config(PERIOD, tmp_path, REPO / "dbt_project")


#: The row the MHS204IndirectActivity mart's author adds (NHS Digital integrity measure 8).
INDIRECT_ACTIVITY_ROW = {
    "item_id": "indirect_activity_time_hour",
    "data_item": "Indirect activity time (hour)",
    "data_item_uid": "M204020",
    "table_name": "mhs204_indirect_activity",
    "column_name": "IndirectActTime",
    "rule": "time_not_on_hour",
    "default_values": "00:00",
    "population": "all",
    "default_threshold_pct": "0",
    "target_score": "70",
    "version": "2025.09",
    "source": "integrity measure 8 (test copy)",
}


def test_another_time_item_is_one_seed_row(tmp_path):
    """Indirect activity time (hour): once its mart has a contract, one seed row scores it."""
    project = tmp_path / "dbt_project"
    seeds = project / "seeds" / "reference"
    shutil.copytree(SEEDS, seeds)
    marts = yaml.safe_load(MODELS_YML.read_text())
    if "mhs204_indirect_activity" not in {m["name"] for m in marts["models"]}:  # the mart as it will be
        marts["models"].append(
            {
                "name": "mhs204_indirect_activity",
                "config": {"contract": {"enforced": True}, "meta": {"idb_table": "MHS204IndirectActivity"}},
                "columns": [{"name": "IndirectActTime", "data_type": "time"}],
            }
        )
    (project / "models" / "marts" / "mhsds").mkdir(parents=True)
    (project / "models" / "marts" / "mhsds" / "_mhsds__models.yml").write_text(yaml.safe_dump(marts))
    with (seeds / "ref_dqmi_items.csv").open("a", newline="") as f:
        fields = next(csv.reader((SEEDS / "ref_dqmi_items.csv").open(newline="")))
        csv.DictWriter(f, fieldnames=fields).writerow(INDIRECT_ACTIVITY_ROW)
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE SCHEMA analytics"))
            conn.execute(
                sa.text(
                    'CREATE TABLE analytics.mhs000_header ("OrgIDProvider" VARCHAR, "ReportingPeriodStartDate" DATE)'
                )
            )
            conn.execute(sa.text("INSERT INTO analytics.mhs000_header VALUES ('R1A', DATE '2026-10-01')"))
            conn.execute(sa.text('CREATE TABLE analytics.mhs204_indirect_activity ("IndirectActTime" TIME)'))
            conn.execute(
                sa.text(
                    "INSERT INTO analytics.mhs204_indirect_activity VALUES ('10:00'), ('10:20'), ('00:00')"
                )
            )
        result = compute_dqmi(engine, period=PERIOD, items=["indirect_activity_time_hour"], seed_dir=seeds)
    finally:
        engine.dispose()
    (item,) = result.items
    assert (item.item.idb_table, item.item.dimension) == ("MHS204IndirectActivity", "integrity")
    assert _counts(result) == {"indirect_activity_time_hour": (1, 0, 1, 1, 0)}
    assert item.score == pytest.approx(100 / 3)


# --- PostgreSQL: the same SQL gives the same counts ------------------------------------------


def _postgres_url() -> str:
    import os

    user = os.environ.get("MHSDS_PG_USER", "postgres")
    password = os.environ.get("MHSDS_PG_PASSWORD")
    host = os.environ.get("MHSDS_PG_HOST", "127.0.0.1")
    port = int(os.environ.get("MHSDS_PG_PORT", "5432"))
    for dbname in (os.environ.get("MHSDS_PG_DBNAME", "mhsds_warehouse"), "postgres"):
        url = sa.URL.create("postgresql+psycopg2", user, password, host, port, dbname)
        engine = sa.create_engine(url)
        try:
            with engine.connect():
                return url.render_as_string(hide_password=False)
        except sa.exc.OperationalError:
            continue
        finally:
            engine.dispose()
    pytest.skip("PostgreSQL on 127.0.0.1:5432 accepts no connection to the warehouse or postgres database")


@pytest.mark.postgres
@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not reachable on 127.0.0.1:5432")
def test_postgres_gives_identical_counts(duck_result):
    engine = sa.create_engine(_postgres_url())
    schema = f"dqmi_test_{uuid.uuid4().hex[:8]}"
    try:
        _build_warehouse(engine, schema)
        result = compute_dqmi(engine, schema=schema, period=PERIOD, seed_dir=SEEDS)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
    assert _counts(result) == EXPECTED == _counts(duck_result)
    assert (result.snomed.attended_contacts, result.snomed.contacts_with_snomed) == (5, 4)
    assert result.dataset_score == pytest.approx(duck_result.dataset_score)
