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
#: The 46 marts generated from NHS England's v6 rules file (MHS003 ... MHS903).
V6_MODELS_YML = REPO / "dbt_project" / "models" / "marts" / "mhsds" / "_mhsds_v6__models.yml"
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
    models = [m for y in (MODELS_YML, V6_MODELS_YML) for m in yaml.safe_load(y.read_text())["models"]]
    return {m["name"]: {c["name"] for c in m["columns"]} for m in models}


def test_seed_items_point_at_real_mart_columns():
    config = load_dqmi_config(PERIOD, SEEDS)
    marts = _mart_columns()
    idb = _idb_of()
    assert len(config.items) >= 20
    assert dict(config.idb_tables) == idb  # the one mapping: the dbt contracts' meta.idb_table
    for item in config.items:
        if item.not_applicable:  # a table MHSDS v6 does not have: named by its IDB name, with a reason
            assert item.table_name not in marts and item.idb_table == item.table_name, item.item_id
            assert item.not_applicable_reason, item.item_id
            continue
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
            "not_applicable",
        }
        if item.rule == "time_not_on_hour":  # the "(hour)" items read TIME columns
            types = dict(load_contracts(REPO / "dbt_project")[item.table_name].columns)
            assert types[item.column_name] == "time", item.item_id
    hour_items = {
        i.item_id: (i.idb_table, i.column_name) for i in config.items if i.rule == "time_not_on_hour"
    }
    assert hour_items == {  # the six "(hour)" items of dqmi_snomed.md A2.1
        "care_contact_time_hour": ("MHS201CareContact", "CareContTime"),
        "referral_received_time_hour": ("MHS101Referral", "ReferralRequestReceivedTime"),
        "service_discharge_time_hour": ("MHS101Referral", "ServDischTime"),
        "indirect_activity_time_hour": ("MHS204IndirectActivity", "IndirectActTime"),
        "onward_referral_time_hour": ("MHS105OnwardReferral", "OnwardReferTime"),
        "discharge_plan_creation_time_hour": ("MHS101Referral", "DischPlanCreationTime"),
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
        "DischPlanCreationDate": D,
        "DischPlanCreationTime": TM,
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
        "SiteIDOfTreat": S,
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
        "SourceAdmMHHospProvSpell": S,
        "DestOfDischHospProvSpell": S,
        "DischDateHospProvSpell": D,
    },
    "mhs502_ward_stay": {"WardStayID": S, "MHAdmittedPatientClass": S, "SpecialisedMHServiceCode": S},
    "mhs604_prim_diag": {"ServiceRequestID": S, "CodedDiagTimestamp": TS},
    "mhs605_sec_diag": {"ServiceRequestID": S, "CodedDiagTimestamp": TS},
    # The MHSDS v6 tables of the items added for issue #13 (one or two scored columns each).
    "mhs003_accomm_status": {"AccommodationType": S},
    "mhs004_emp_status": {"EmployStatus": S},
    "mhs005_pat_ind": {"ExBAFIndicator": S},
    "mhs006_mh_care_coord": {"CareProfServOrTeamTypeAssoc": S},
    "mhs007_disability_type": {"DisabCode": S},
    "mhs008_care_plan_type": {"CarePlanTypeMH": S},
    "mhs105_onward_referral": {"OnwardReferTime": TM, "OATReason": S},
    "mhs204_indirect_activity": {"IndirectActTime": TM, "OrgIDComm": S},
    "mhs301_group_session": {"OrgIDComm": S},
    "mhs401_mh_act_period": {"LegalStatusCode": S},
    "mhs503_assigned_care_prof": {"TreatFuncCodeMH": S},
    "mhs505_restrictive_intervent_inc": {"RestrictiveIntReason": S},
    "mhs512_hosp_spell_comm_ass_per": {"OrgIDComm": S},
    "mhs515_restrictive_intervent_type": {"RestrictiveIntType": S},
    "mhs518_clin_readyfor_discharge": {"ClinReadyforDischDelayReason": S, "AttribToIndic": S},
    "mhs608_anon_self_assess": {"OrgIDComm": S},
    "mhs903_ward_details": {
        "WardType": S,
        "WardAge": S,
        "WardIntendedSex": S,
        "WardIntendedClinCareMH": S,
        "WardSecLevel": S,
        "LockedWardInd": S,
    },
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
#: (DischPlanCreationDate, DischPlanCreationTime): the (hour) item counts referrals with a plan date
#: only (R1-R4); R5's 11:00 has no date, so it is not counted.
DISCH_PLAN: dict[str, tuple[date | None, time | None]] = {
    "R1": (date(2026, 10, 2), time(10, 15)),
    "R2": (date(2026, 10, 3), time(0, 0)),
    "R3": (date(2026, 10, 4), time(9, 0)),
    "R4": (date(2026, 10, 5), None),
    "R5": (None, time(11, 0)),
    "R6": (None, None),
    "R7": (None, None),
    "R8": (None, None),
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
            r + REFERRAL_TIMES[r[0]] + DISCH_PLAN[r[0]]
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
    # id, attendance, consultation mechanism, location type, commissioner, contact time, site of treatment
    "mhs201_care_contact": _cols(
        "mhs201_care_contact",
        ("C1", "5", "01", "A01", None, time(0, 0), "RX1AB"),
        ("C2", "6", "98", "X01", "18C", time(13, 0), "R9998"),
        ("C3", "5", "03", "Z99", "VPP00", time(13, 30), "89997"),
        ("C4", "3", None, None, None, None, None),
        ("C5", "1", "02", "B01", None, time(8, 15), "RX1"),
        ("C6", "6", "11", "L99", None, time(0, 1), "rx1ab"),
        ("C7", None, "13", "", None, time(23, 0), "RX1AB01"),
        ("C8", "5", "1", "A01", None, time(9, 45), " "),
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
    # id, start, estimated discharge, admission source, discharge destination, discharge date
    "mhs501_hosp_prov_spell": _cols(
        "mhs501_hosp_prov_spell",
        ("S1", date(2026, 10, 1), date(2026, 10, 20), "19", "19", date(2026, 10, 20)),
        ("S2", date(2026, 10, 10), date(2026, 10, 9), "98", "98", date(2026, 10, 12)),
        ("S3", date(2026, 10, 10), date(2026, 10, 10), "99", "99", date(2026, 10, 15)),
        ("S4", date(2026, 10, 2), None, "20", "48", None),
        ("S5", date(2026, 10, 3), None, None, None, None),
    ),
    # id, bed type, specialised MH service code (W2: none, not counted; W4: blank, counted missing)
    "mhs502_ward_stay": _cols(
        "mhs502_ward_stay",
        ("W1", "200", "NCBPS23O/PICU"),
        ("W2", "10", None),
        ("W3", None, "NCBPS99Z/XX"),
        ("W4", "311", ""),
    ),
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
    "mhs003_accomm_status": _cols("mhs003_accomm_status", ("01",), ("21",), ("98",), ("22",), (None,), ("",)),
    "mhs004_emp_status": _cols("mhs004_emp_status", ("01",), ("ZZ",), ("08",), ("09",), (None,)),
    "mhs005_pat_ind": _cols("mhs005_pat_ind", ("02",), ("05",), ("UU",), ("ZZ",), ("01",), (None,)),
    "mhs006_mh_care_coord": _cols("mhs006_mh_care_coord", ("A01",), ("C10",), ("Z01",), ("A03",), ("",)),
    "mhs007_disability_type": _cols("mhs007_disability_type", ("01",), ("NN",), ("XX",), ("11",), (None,)),
    "mhs008_care_plan_type": _cols("mhs008_care_plan_type", ("10",), ("14",), ("15",), (None,)),
    # onward referral time, out of area reason (O4: no reason, not counted; O6: blank, counted missing)
    "mhs105_onward_referral": _cols(
        "mhs105_onward_referral",
        (time(10, 20), "10"),
        (time(0, 0), "15"),
        (time(14, 0), "99"),
        (None, None),
        (time(9, 5), "16"),
        (time(12, 0), ""),
    ),
    "mhs204_indirect_activity": _cols(
        "mhs204_indirect_activity",
        (time(10, 20), "15E00"),
        (time(10, 0), "VPP00"),
        (time(0, 0), None),
        (None, "15e00"),
    ),
    "mhs301_group_session": _cols("mhs301_group_session", ("QHM",), ("R9998",), ("89999",), ("Q",), (None,)),
    # From April 2025 NHS Digital counts 01 and 98 invalid (99 stays default).
    "mhs401_mh_act_period": _cols(
        "mhs401_mh_act_period", ("03",), ("38",), ("01",), ("98",), ("99",), ("11",), (None,)
    ),
    "mhs503_assigned_care_prof": _cols(
        "mhs503_assigned_care_prof", ("700",), ("319",), ("710 ",), ("999",), (None,)
    ),
    "mhs505_restrictive_intervent_inc": _cols(
        "mhs505_restrictive_intervent_inc", ("10",), ("98",), ("99",), ("20",), (None,)
    ),
    "mhs512_hosp_spell_comm_ass_per": _cols(
        "mhs512_hosp_spell_comm_ass_per", ("15E00",), ("XMD00",), (None,)
    ),
    "mhs515_restrictive_intervent_type": _cols(
        "mhs515_restrictive_intervent_type", ("01",), ("17",), ("02",), ("99",)
    ),
    # delay reason, attributable to (07 was valid for v5 MHS504 only)
    "mhs518_clin_readyfor_discharge": _cols(
        "mhs518_clin_readyfor_discharge",
        ("01", "04"),
        ("37", "06"),
        ("98", "07"),
        ("38", None),
        (None, "05"),
    ),
    "mhs608_anon_self_assess": _cols("mhs608_anon_self_assess", ("15E00",), ("VPP00",), ("ABCD",)),
    # ward type, age group, sex, care intensity, security level, locked ward
    "mhs903_ward_details": _cols(
        "mhs903_ward_details",
        ("01", "10", "1", "51", "0", "Y"),
        ("06", "99", "8", "63", "3", "N"),
        ("07", "16", "9", "54", "4", "X"),
        (None, None, None, None, None, None),
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
    "estimated_discharge_date": (2, 0, 0, 1, 2),
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
    # --- Items added for issue #13 (every A2.1 item) ---
    # Plan date set: R1 10:15 V, R2 00:00 D, R3 09:00 I, R4 blank M; R5's 11:00 has no plan date.
    "discharge_plan_creation_time_hour": (1, 0, 1, 1, 1),
    # Sites (5-9 characters): RX1AB, RX1AB01 V; R9998, 89997 D; RX1 (3), rx1ab (lower case) I; C4, C8 M.
    "site_of_treatment": (2, 0, 2, 2, 2),
    # Discharged spells S1-S3 only: 19 V, 99 D, 98 I (no longer a default from April 2025).
    "discharge_destination": (1, 0, 1, 1, 0),
    # Every spell: 19 V; 98, 99 D; 20 I; S5 M.
    "admission_source": (1, 0, 2, 1, 1),
    # Ward stays with a code: PICU V, NCBPS99Z/XX I, blank M; W2 (NULL) not counted.
    "smh_service_code_ward_stay": (1, 0, 0, 1, 1),
    "treatment_function_code": (3, 0, 0, 1, 1),  # 700, 319, '710 ' (trimmed) V; 999 I
    "ex_british_armed_forces": (2, 0, 2, 1, 1),  # 02, 05 V; UU, ZZ D; 01 I
    "care_prof_team_type_assoc": (2, 1, 0, 1, 1),  # A01, C10 V; Z01 O; A03 (retired 2021) I
    "care_plan_type": (2, 0, 0, 1, 1),
    "onward_referral_time_hour": (2, 0, 1, 2, 1),  # 10:20, 09:05 V; 00:00 D; 14:00, 12:00 I
    "referred_out_of_area_reason": (2, 0, 1, 1, 1),  # 10, 15 V; 99 D; 16 I; '' M; NULL not counted
    "indirect_activity_time_hour": (1, 0, 1, 1, 1),
    "commissioner_indirect_activity": (1, 0, 1, 1, 1),  # 15E00 V; VPP00 D; 15e00 I
    "commissioner_group_session": (1, 0, 2, 1, 1),  # QHM V; R9998, 89999 D; Q I
    "mha_legal_status": (2, 0, 1, 3, 1),  # 03, 38 V; 99 D; 01, 98, 11 I
    "restrictive_intervention_reason": (1, 1, 1, 1, 1),
    "restrictive_intervention_type": (2, 0, 1, 1, 0),  # 01, 17 V; 99 D; 02 I
    "commissioner_hospital_spell": (1, 0, 1, 0, 1),
    "delayed_discharge_reason": (2, 1, 0, 1, 1),  # 01, 37 V; 98 O; 38 I
    "delayed_discharge_attributable_to": (3, 0, 0, 1, 1),  # 04, 06, 05 V; 07 I
    "commissioner_anon_self_assessment": (1, 0, 1, 1, 0),  # ABCD: 4 characters
    "accommodation_type": (2, 1, 0, 1, 2),
    "employment_status": (3, 0, 0, 1, 1),
    "disability_code": (2, 1, 0, 1, 1),
    "ward_setting_type": (2, 0, 0, 1, 1),
    "ward_intended_age_group": (1, 1, 0, 1, 1),  # 99 other, as NHS Digital counts it
    "ward_intended_sex": (1, 1, 0, 1, 1),
    "ward_clinical_care_intensity": (2, 0, 0, 1, 1),
    "ward_security_level": (2, 0, 0, 1, 1),
    "locked_ward_indicator": (2, 0, 0, 1, 1),
}
#: Listed in the DQMI, not scored: MHS603 is not part of MHSDS v6.
NOT_APPLICABLE = {"provisional_diagnosis_date"}


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
    """VODIM counts of the counted items (a not-applicable item has none)."""
    return {
        r.item.item_id: (r.counts.valid, r.counts.other, r.counts.default, r.counts.invalid, r.counts.missing)
        for r in result.items
        if r.counts is not None
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
    scores = [r.score for r in duck_result.items if r.item.item_id not in NOT_APPLICABLE]
    assert None not in scores and len(scores) == len(EXPECTED)
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
    assert {r.status for r in result.items if r.item.item_id not in NOT_APPLICABLE} == {"error"}
    assert {r.status for r in result.items if r.item.item_id in NOT_APPLICABLE} == {"not_applicable"}
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
    assert table.num_rows == len(EXPECTED) + len(NOT_APPLICABLE)
    row = {r["item_id"]: r for r in table.to_pylist()}["postcode"]
    assert (row["valid"], row["default"], row["total"], row["item_score"]) == (4, 2, 10, pytest.approx(40.0))
    assert row["met_threshold"] is False and row["threshold"] == 70.0
    # Tables by IDB name (from the dbt contracts), never the warehouse relation.
    assert row["table_name"] == "MHS001MPI"
    tables = set(table.column("table_name").to_pylist())
    assert tables == {_idb_of()[t] for t in TABLES if t not in ("mhs000_header", "mhs202_care_activity")} | {
        "MHS603ProvDiag"  # the not-applicable item, under its IDB name
    }
    assert {"MHS101Referral", "MHS201CareContact", "MHS902ServiceTeamDetails"} <= tables
    meta = table.schema.metadata[b"dqmi"].decode()
    assert '"dataset_score"' in meta and "snomed_ct_coverage" in meta
    assert not RELATION_NAME.search(meta) and "[S" not in meta and "/work/" not in meta

    report = paths["html"].read_text()
    assert f"{duck_result.dataset_score:.1f}" in report
    assert "SNOMED CT coverage" in report and "80.0%" in report
    for word in ("Valid", "Other", "Default", "Invalid", "Missing", "2025.09", "Appendix 1"):
        assert word in report
    # self-contained: nothing loaded from elsewhere; public sources are cited by name and https address
    assert "<script" not in report and "http" not in report.replace("https://", "")
    assert "src=" not in report and "<link" not in report
    dqmi_page = (
        "https://digital.nhs.uk/data-and-information/data-tools-and-services/data-services/data-quality/"
    )
    assert f'href="{dqmi_page}' in report
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
    # (the shared stylesheet inlined in <style> is not report text: its comments may name modules)
    shown_text = re.sub(r"<style>.*?</style>", "", report, flags=re.S)
    for dev in ("/work/", ".md", ".csv", ".py", "write_dqmi", "disclosure_controlled=", "DERIVED"):
        assert dev not in shown_text, dev
    assert "Data Quality Maturity Index (DQMI) methodology" in report  # the method, cited in words
    # every table sits in a wrapper that keeps it within the page, its text cells wrapping
    assert report.count("<table") == report.count('<div class="table-wrap">\n<table') >= 4
    assert 'class="wrap dqmi-item"' in report

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
    assert '<td class="n">*</td>' in report and "disclosure-controlled" in report


def test_check_results_rows(duck_result):
    rows = to_check_results(duck_result)
    assert len(rows) == len(EXPECTED) + len(NOT_APPLICABLE) + 2
    assert {r.source for r in rows} == {"dqmi"} and {r.measure for r in rows} == {"valid"}
    by_id = {r.check_id: r for r in rows}
    pc = by_id["dqmi.postcode"]
    assert pc.table_name == "MHS001MPI" and by_id["dqmi.attendance_status"].table_name == "MHS201CareContact"
    assert by_id["dqmi.snomed_ct_coverage"].table_name == "MHS201CareContact"
    idb_names = set(_idb_of().values())
    assert {r.table_name for r in rows} - {None, "MHS603ProvDiag"} <= idb_names
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


def _tiny_warehouse(path: Path, period_start: date, tables: dict[str, tuple[str, list[str]]]) -> sa.Engine:
    """A DuckDB warehouse with a header for ``period_start`` and one-column-set tables:
    ``{relation: (column DDL, [row value lists as SQL literals])}``."""
    engine = sa.create_engine(f"duckdb:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA analytics"))
        conn.execute(
            sa.text(
                'CREATE TABLE analytics.mhs000_header ("OrgIDProvider" VARCHAR, "ReportingPeriodStartDate" DATE)'
            )
        )
        conn.execute(sa.text("INSERT INTO analytics.mhs000_header VALUES ('R1A', :d)"), {"d": period_start})
        for name, (ddl, values) in tables.items():
            conn.execute(sa.text(f"CREATE TABLE analytics.{name} ({ddl})"))
            conn.execute(
                sa.text(f"INSERT INTO analytics.{name} VALUES " + ", ".join(f"({v})" for v in values))
            )
    return engine


def test_indirect_activity_time_is_scored_from_the_seed(tmp_path):
    """Indirect activity time (hour), NHS Digital integrity measure 8, on MHS204IndirectActivity:
    10:00 on the hour I, 10:20 V, 00:00 midnight D: score (1 + 1 - 1 excess) / 3 x 100 = 33.3."""
    engine = _tiny_warehouse(
        tmp_path / "w.duckdb",
        date(2026, 10, 1),
        {"mhs204_indirect_activity": ('"IndirectActTime" TIME', ["'10:00'", "'10:20'", "'00:00'"])},
    )
    try:
        result = compute_dqmi(engine, period=PERIOD, items=["indirect_activity_time_hour"], seed_dir=SEEDS)
    finally:
        engine.dispose()
    (item,) = result.items
    assert (item.item.idb_table, item.item.dimension) == ("MHS204IndirectActivity", "integrity")
    assert _counts(result) == {"indirect_activity_time_hour": (1, 0, 1, 1, 0)}
    assert item.score == pytest.approx(100 / 3)


@pytest.mark.parametrize(
    ("period_start", "expected", "score"),
    [
        # Before April 2025: 01 other, 98 and 99 default (dqmi_snomed.md A2.3). Score: (2 + 1 + 2 - 2) / 6.
        (date(2025, 3, 1), (2, 1, 2, 1, 0), 50.0),
        # From April 2025 (validity.sql L372, L377-378): 01 and 98 invalid, 99 default. (2 + 1 - 1) / 6.
        (date(2025, 4, 1), (2, 0, 1, 3, 0), 100 / 3),
    ],
)
def test_mha_legal_status_follows_the_april_2025_vodim_change(tmp_path, period_start, expected, score):
    """03, 38 valid; 01, 98, 99 as the period's rule says; 11 never a legal status code."""
    engine = _tiny_warehouse(
        tmp_path / "w.duckdb",
        period_start,
        {
            "mhs401_mh_act_period": (
                '"LegalStatusCode" VARCHAR',
                ["'03'", "'38'", "'01'", "'98'", "'99'", "'11'"],
            )
        },
    )
    try:
        result = compute_dqmi(engine, items=["mha_legal_status"], seed_dir=SEEDS)
    finally:
        engine.dispose()
    (item,) = result.items
    assert _counts(result) == {"mha_legal_status": expected}
    assert item.score == pytest.approx(score)


def test_discharge_destination_and_delayed_discharge_by_hand(tmp_path):
    """Destination of discharge counts discharged spells only; delayed discharge reason has 98 other.

    Spells: (19, discharged) V, (99, discharged) D, (98, discharged) I from April 2025, (42, still in
    hospital) not counted: V 1 / D 1 / I 1 of 3, score (1 + 1 - 1) / 3 x 100 = 33.3.
    Delay reasons 05 V, 98 O, A2 (a v5 code) I, blank M: score (1 + 1) / 4 x 100 = 50.0.
    """
    engine = _tiny_warehouse(
        tmp_path / "w.duckdb",
        date(2026, 10, 1),
        {
            "mhs501_hosp_prov_spell": (
                '"DestOfDischHospProvSpell" VARCHAR, "DischDateHospProvSpell" DATE',
                [
                    "'19', DATE '2026-10-02'",
                    "'99', DATE '2026-10-03'",
                    "'98', DATE '2026-10-04'",
                    "'42', NULL",
                ],
            ),
            "mhs518_clin_readyfor_discharge": (
                '"ClinReadyforDischDelayReason" VARCHAR',
                ["'05'", "'98'", "'A2'", "''"],
            ),
        },
    )
    try:
        result = compute_dqmi(
            engine, period=PERIOD, items=["discharge_destination", "delayed_discharge_reason"], seed_dir=SEEDS
        )
    finally:
        engine.dispose()
    assert _counts(result) == {
        "discharge_destination": (1, 0, 1, 1, 0),
        "delayed_discharge_reason": (1, 1, 0, 1, 1),
    }
    scores = {r.item.item_id: r.score for r in result.items}
    assert scores == {
        "discharge_destination": pytest.approx(100 / 3),
        "delayed_discharge_reason": pytest.approx(50.0),
    }
    assert result.table_records == {"MHS501HospProvSpell": 4, "MHS518ClinReadyforDischarge": 4}


def test_not_applicable_item_is_reported_with_its_reason(duck_result):
    """Provisional diagnosis date: listed by NHS England, not scored (MHS603 is not in MHSDS v6)."""
    (na,) = [r for r in duck_result.items if r.item.item_id in NOT_APPLICABLE]
    assert (na.status, na.counts, na.score, na.included) == ("not_applicable", None, None, False)
    assert na.item.idb_table == "MHS603ProvDiag" and "not part of MHSDS v6" in na.item.not_applicable_reason
    row = {r.check_id: r for r in to_check_results(duck_result)}["dqmi.provisional_diagnosis_date"]
    assert row.status == "not_applicable" and "not applicable - MHS603ProvDiag is not part" in row.description
    report = render_dqmi_html(duck_result)
    assert "MHS603ProvDiag is not part of MHSDS v6" in report
    n = len(EXPECTED) + len(NOT_APPLICABLE)
    assert f"{n} data items: {len(EXPECTED)} scored, 1 not applicable" in report
    assert '<tr class="dqmi-group"><th colspan="13">MHS903WardDetails</th></tr>' in report  # grouped by table
    assert "valid: ODS code format, 5 to 9 upper-case letters/digits" in report  # the site rule


def test_seed_rule_arguments_are_checked(tmp_path):
    for f in SEEDS.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copytree(SEEDS / "v6", tmp_path / "v6")
    path = tmp_path / "ref_dqmi_items.csv"
    original = list(csv.DictReader(path.open(newline="")))
    for item_id, column, value, message in (
        ("provisional_diagnosis_date", "rule_arg", "", "not_applicable needs rule_arg"),
        ("site_of_treatment", "rule_arg", "5|x", "ods_code takes rule_arg"),
    ):
        rows = [dict(r) for r in original]
        for r in rows:
            if r["item_id"] == item_id:
                r[column] = value
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with pytest.raises(ValueError, match=f"{item_id}.*{message}"):
            load_dqmi_config(PERIOD, tmp_path, REPO / "dbt_project")


#: NHS England's MHSDS DQMI item list, dqmi_snomed.md A2.1 ([S15] "Recoded Data Item"), each with
#: the seed items that score it (several for the commissioner, one per table NHS Digital measures).
A2_1_ITEMS: dict[str, set[str]] = {
    "Activity location type code": {"activity_location_type"},
    "Attended or did not attend": {"attendance_status"},
    "Care contact time (hour)": {"care_contact_time_hour"},
    "Care plan type": {"care_plan_type"},
    "Care professional service or team type association (MH)": {"care_prof_team_type_assoc"},
    "Clinical response priority type (eating disorder)": {"clinical_response_priority"},
    "Consultation medium used": {"consultation_mechanism"},
    "Delayed discharge attributable to": {"delayed_discharge_attributable_to"},
    "Delayed discharge reason": {"delayed_discharge_reason"},
    "Discharge plan creation time (hour)": {"discharge_plan_creation_time_hour"},
    "Estimated discharge date": {"estimated_discharge_date"},
    "Ethnic category": {"ethnic_category"},
    "Ex-British armed forces indicator": {"ex_british_armed_forces"},
    "General medical practice code (patient registration)": {"gp_practice_code"},
    "Hospital bed type (MH)": {"admitted_patient_class"},
    "Indirect activity time (hour)": {"indirect_activity_time_hour"},
    "MHA legal status classification code": {"mha_legal_status"},
    "NHS number": {"nhs_number"},
    "Onward referral time (hour)": {"onward_referral_time_hour"},
    "Organisation identifier (code of commissioner)": {
        "commissioner_referral",
        "commissioner_care_contact",
        "commissioner_indirect_activity",
        "commissioner_group_session",
        "commissioner_hospital_spell",
        "commissioner_anon_self_assessment",
    },
    "Organisation site identifier (of treatment)": {"site_of_treatment"},
    "Person birth date": {"person_birth_date"},
    "Person stated gender code": {"person_stated_gender"},
    "Postcode of usual address": {"postcode"},
    "Primary diagnosis date": {"primary_diagnosis_date"},
    "Primary reason for referral (MH) (referral received on/after 1 Jan 2016)": {"primary_reason_referral"},
    "Provisional diagnosis date": {"provisional_diagnosis_date"},
    "Referral closure reason": {"referral_closure_reason", "other_service_closure_reason"},
    "Referral request received time (hour)": {"referral_received_time_hour"},
    "Referred out of area reason (adult acute MH)": {"referred_out_of_area_reason"},
    "Secondary diagnosis date": {"secondary_diagnosis_date"},
    "Service discharge time (hour)": {"service_discharge_time_hour"},
    "Service or team type referred to (MH)": {"service_team_type"},
    "Source of referral": {"source_of_referral"},
    "Specialised MH service code – ward stay": {"smh_service_code_ward_stay"},
    "Treatment function code (MH)": {"treatment_function_code"},
}


@pytest.mark.parametrize("period", ["2024-04", "2025-03", "2025-04", "2026-10"])
def test_every_a2_1_item_is_scored_or_marked_not_applicable(period):
    """Each of the 36 A2.1 items has an active seed row in every v6 period: a scored rule on a built
    mart, or rule not_applicable with the reason (provisional diagnosis date only)."""
    assert len(A2_1_ITEMS) == 36
    config = load_dqmi_config(period, SEEDS)
    by_id = {i.item_id: i for i in config.items}
    marts = _mart_columns()
    for name, item_ids in A2_1_ITEMS.items():
        for item_id in item_ids:
            assert item_id in by_id, f"{name}: {item_id} not active in {period}"
            item = by_id[item_id]
            if item.not_applicable:
                assert item.not_applicable_reason, item_id
            else:
                assert item.column_name in marts[item.table_name], item_id
    assert {i for i, item in by_id.items() if item.not_applicable} == NOT_APPLICABLE
    # The CDQA items of A2.3's last row are scored too.
    cdqa = {
        "accommodation_type",
        "employment_status",
        "disability_code",
        "admission_source",
        "discharge_destination",
        "restrictive_intervention_reason",
        "restrictive_intervention_type",
        "ward_setting_type",
        "ward_intended_age_group",
        "ward_intended_sex",
        "ward_clinical_care_intensity",
        "ward_security_level",
        "locked_ward_indicator",
    }
    assert cdqa <= set(by_id)
    assert set(by_id) == set().union(*A2_1_ITEMS.values()) | cdqa | {
        "gender_identity",
        "gender_same_at_birth",
    }


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
