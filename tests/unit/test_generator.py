"""The synthetic EPR generator: determinism, volumes, planted defects, clean rows, expected keys."""

from __future__ import annotations

import csv
import re
import socket
import sqlite3
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, select, text

from mhsds_pipeline.identifiers import (
    is_default_postcode,
    nhs_number_check_digit,
    nhs_number_is_valid,
    postcode_is_valid,
    sctid_is_valid,
    sctid_partition,
    verhoeff_is_valid,
)
from mhsds_pipeline.source import schema
from mhsds_pipeline.synthetic.defects import DIAGNOSIS_FREE_TEXT, OVERSIZE_LENGTH, RULES, DefectRates
from mhsds_pipeline.synthetic.generator import generate, main
from mhsds_pipeline.synthetic.spine import nhs_check_digits

pytestmark = pytest.mark.unit

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "reference"
SCALE, SEED, END, MONTHS = 0.03, 7, "2026-10", 3
PERIODS = ["2026-08", "2026-09", "2026-10"]


def _read_seed(name: str) -> list[dict[str, str]]:
    with open(SEEDS / name, newline="") as fh:
        return list(csv.DictReader(fh))


VALUESET = {r["concept_id"] for r in _read_seed("ref_snomed_intervention_valueset.csv")}
TOOLS = {r["concept_id"]: r for r in _read_seed("ref_assessment_tools.csv")}


class Generated:
    def __init__(self, out: Path, summary):
        self.out = out
        self.summary = summary
        self.db = out / "epr.sqlite"
        con = sqlite3.connect(self.db)
        self.t = {
            name: pd.read_sql(f"SELECT * FROM {name} ORDER BY rowid", con) for name in schema.TABLE_NAMES
        }
        con.close()
        self.gt = pd.read_csv(out / "ground_truth.csv", dtype=str)
        self.keys = pd.read_parquet(out / "expected_keys.parquet")

    def defect_keys(self, rule: str) -> set[str]:
        return set(self.gt.loc[self.gt.rule == rule, "epr_key"])

    def table_defect_keys(self, table: str) -> set[str]:
        return set(self.gt.loc[self.gt.epr_table == table, "epr_key"])


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> Generated:
    out = tmp_path_factory.mktemp("epr")
    summary = generate(
        f"sqlite:///{out / 'epr.sqlite'}", scale=SCALE, seed=SEED, end_period=END, months=MONTHS, out_dir=out
    )
    return Generated(out, summary)


def _month(ts: pd.Series) -> pd.Series:
    return ts.str[:7]


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_gives_identical_outputs_and_tables(gen, tmp_path):
    # The second run goes through the CLI, which must be equivalent to the API.
    rc = main(
        [
            "--url",
            f"sqlite:///{tmp_path / 'epr.sqlite'}",
            "--scale",
            str(SCALE),
            "--seed",
            str(SEED),
            "--end-period",
            END,
            "--months",
            str(MONTHS),
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert rc == 0
    for name in ("ground_truth.csv", "expected_keys.parquet"):
        assert (tmp_path / name).read_bytes() == (gen.out / name).read_bytes(), name
    other = Generated(tmp_path, None)
    for name in schema.TABLE_NAMES:
        pd.testing.assert_frame_equal(other.t[name], gen.t[name], obj=name)


def test_other_seed_gives_other_data(gen, tmp_path):
    generate(
        f"sqlite:///{tmp_path / 'epr.sqlite'}",
        scale=SCALE,
        seed=SEED + 1,
        end_period=END,
        months=MONTHS,
        out_dir=tmp_path,
    )
    other = Generated(tmp_path, None)
    assert not other.t["appointments"]["start_at"].equals(gen.t["appointments"]["start_at"])


def test_regenerating_over_an_existing_database_replaces_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'epr.sqlite'}"
    first = generate(url, scale=0.02, seed=1, end_period=END, months=1, out_dir=tmp_path)
    second = generate(url, scale=0.02, seed=1, end_period=END, months=1, out_dir=tmp_path)
    assert first.row_counts == second.row_counts
    con = sqlite3.connect(tmp_path / "epr.sqlite")
    assert con.execute("SELECT count(*) FROM appointments").fetchone()[0] == second.row_counts["appointments"]
    con.close()


# --- volumes and realism ------------------------------------------------------------------------


def test_summary_matches_database(gen):
    for name in schema.TABLE_NAMES:
        assert gen.summary.row_counts[name] == len(gen.t[name]), name
    assert gen.summary.periods == PERIODS
    summary_rows = gen.gt.groupby("rule").size().to_dict()
    assert {k: v for k, v in gen.summary.defect_period_rows.items() if v} == summary_rows


def test_volumes_per_month(gen):
    counts = gen.keys.groupby(["period", "mhsds_table"]).size().unstack(0)
    ap = gen.t["appointments"]
    for period in PERIODS:
        c = counts[period]
        assert 0.8 * 31_000 * SCALE < c["mhs201_care_contact"] < 1.2 * 31_000 * SCALE
        assert 0.75 * 24_000 * SCALE < c["mhs101_referral"] < 1.25 * 24_000 * SCALE
        assert 0.75 < c["mhs001_mpi"] / c["mhs101_referral"] < 0.95
        assert c["mhs002_gp"] >= c["mhs001_mpi"] * 0.99
        assert c["mhs501_hosp_prov_spell"] > 0 and c["mhs502_ward_stay"] >= c["mhs501_hosp_prov_spell"] * 0.9
        assert 0.4 < c["mhs604_prim_diag"] / c["mhs101_referral"] < 0.75
        assert 0.04 < c["mhs607_coded_score_assessment_act"] / c["mhs201_care_contact"] < 0.12
        assert c["mhs902_service_team_details"] == len(gen.t["teams"])
        dated = ap[_month(ap.start_at) == period]
        attended = dated.attendance.isin(["5", "6"])
        assert 0.72 < attended.mean() < 0.88
        acts = gen.t["interventions"].appointment_id.isin(dated.appointment_id[attended]).sum()
        assert 0.55 < acts / attended.sum() < 0.85
    new = gen.t["referrals"][_month(gen.t["referrals"].received_at).isin(PERIODS)]
    assert 0.75 * 6000 * SCALE * MONTHS < len(new) < 1.25 * 6000 * SCALE * MONTHS


def test_indirect_activity_volumes_and_shape(gen):
    """MHS204: about 16% of the month's contact rows (mhsds.md 8: 1,052 vs 6,413), mostly CYP,
    perinatal and community teams, on weekdays in office hours (a share exactly on the hour), on
    referrals open that day, done by the referral's team or another team involved in it."""
    counts = gen.keys.groupby(["period", "mhsds_table"]).size().unstack(0)
    ia, ref, teams = gen.t["indirect_activities"], gen.t["referrals"], gen.t["teams"]
    for period in PERIODS:
        c = counts[period]
        assert 0.12 < c["mhs204_indirect_activity"] / c["mhs201_care_contact"] < 0.20, period
    clean = ia[~ia.indirect_activity_id.isin(gen.table_defect_keys("indirect_activities"))]
    line = clean.merge(teams[["team_id", "service_line"]], on="team_id").service_line
    assert line.isin(["CAMHS", "PERINATAL", "ADULT", "OLDER_ADULT", "EIP", "IPS"]).mean() > 0.9
    assert (line == "CAMHS").mean() > 0.35
    start = pd.to_datetime(clean.start_at)
    assert start.notna().all() and (start.dt.day_of_week < 5).mean() > 0.97
    assert ((start.dt.hour >= 9) & (start.dt.hour < 18)).mean() > 0.97
    on_hour = (start.dt.minute == 0) & (start.dt.second == 0)
    assert 0.1 < on_hour.mean() < 0.4 and (start.dt.minute % 15 != 0).any()
    r = clean.merge(ref, on="referral_id", suffixes=("", "_ref"))
    assert len(r) == len(clean)
    assert ((r.start_at >= r.received_at) & (r.discharged_at.isna() | (r.start_at < r.discharged_at))).all()
    own = r.team_id == r.team_id_ref
    rt = gen.t["referral_teams"]
    other = set(zip(rt.referral_id, rt.team_id, strict=True))
    assert own.mean() > 0.8
    assert all((a, b) in other for a, b in zip(r.referral_id[~own], r.team_id[~own], strict=True))
    assert (_month(clean.start_at) == _month(clean.recorded_at)).all()
    assert not clean.duplicated(["referral_id", "team_id", "start_at"]).any()
    assert clean.person_consulted.isin(
        {c["code"] for c in _read_seed("ref_indirect_activity_person_consulted.csv")}
    ).all()
    assert clean.snomed_procedure.dropna().isin(VALUESET).all()


def test_some_cyp_referrals_have_indirect_activity_but_no_attended_contact(gen):
    """The CYP access measure (MHS95) counts indirect activity too: every month some CYP
    referrals are reached only indirectly (school, GP, social worker)."""
    ia, ap, ref, teams = (gen.t[n] for n in ("indirect_activities", "appointments", "referrals", "teams"))
    cyp = set(ref.referral_id[ref.team_id.isin(teams.team_id[teams.age_group == "CYP"])])
    for period in PERIODS:
        with_indirect = set(ia.referral_id[_month(ia.start_at) == period]) & cyp
        attended = set(ap.referral_id[(_month(ap.start_at) == period) & ap.attendance.isin(["5", "6"])])
        assert len(with_indirect - attended) >= 3, period


def test_code_mixes(gen):
    ap = gen.t["appointments"]
    assert ap.attendance.isin(list("234567")).all()
    assert set(ap.contact_mechanism.dropna()) >= {"01", "02", "11"}
    cancelled = ap.attendance.isin(["2", "4"])
    assert (
        ap.loc[cancelled, "cancelled_on"].notna().all()
        and ap.loc[cancelled, "cancellation_reason"].notna().all()
    )
    assert ap.loc[~cancelled, "cancelled_on"].isna().all()
    assert (gen.t["patients"].ethnicity == "A").mean() > 0.7
    assert gen.t["wards"].beds.sum() >= 150
    assert gen.t["ward_movements"].patient_class.str.match(r"^(20\d|21[0-3]|30\d|31[01])$").all()
    dx = gen.t["diagnoses"]
    assert set(dx.scheme) == {"02", "06"}
    icd = (dx.scheme == "02") & ~dx.diagnosis_id.isin(gen.defect_keys("DIAGNOSIS_FREE_TEXT"))
    assert dx.loc[icd, "code"].str.match(r"^F\d\d(\.\d)?$").all()
    assert dx.loc[dx.scheme == "06", "code"].map(sctid_is_valid).all()
    assert (dx[dx["rank"] == "P"].groupby("referral_id").size() == 1).all()
    assert set(gen.t["teams"].team_type_code) >= {
        "A02",
        "A05",
        "A06",
        "A07",
        "A11",
        "A14",
        "A17",
        "A19",
        "C02",
        "C10",
        "D05",
    }


def test_ages_fit_services(gen):
    pat = gen.t["patients"].set_index("patient_id")
    ref = gen.t["referrals"].merge(gen.t["teams"], on="team_id")
    ref = ref[ref.patient_id.isin(pat.index)]
    age = pd.to_datetime(ref.received_at) - pd.to_datetime(pat.loc[ref.patient_id, "date_of_birth"]).values
    years = age.dt.days / 365.25
    line = ref.service_line.values
    assert (years[line == "CAMHS"] < 19).all()
    assert (years[line == "OLDER_ADULT"] >= 60).all()
    perinatal = ref[line == "PERINATAL"]
    assert (pat.loc[perinatal.patient_id, "stated_gender"] == "2").mean() > 0.95


def test_referral_history_and_contacts_inside_referrals(gen):
    ref = gen.t["referrals"].set_index("referral_id")
    open_in_first = ref[ref.received_at < "2026-08"]
    assert (open_in_first.received_at < "2024-08").any(), "some referrals open for years"
    ap = gen.t["appointments"]
    ap = ap[ap.referral_id.isin(ref.index)]
    r = ref.loc[ap.referral_id]
    assert (ap.start_at.values >= r.received_at.values).all()
    closed = r.discharged_at.notna().values & (r.discharged_at.values >= r.received_at.fillna("").values)
    assert (ap.start_at.values[closed] <= r.discharged_at.values[closed]).all()
    assert (ap.recorded_at >= ap.start_at).all()


# --- planted defects ----------------------------------------------------------------------------


def test_every_rule_is_planted_in_every_month(gen):
    per = gen.gt.groupby(["rule", "period"]).size()
    for rule in RULES:
        for period in PERIODS:
            assert per.get((rule, period), 0) >= DefectRates().min_per_month, (rule, period)


def test_a_row_carries_one_defect(gen):
    rules_per_row = gen.gt.groupby(["epr_table", "epr_key"]).rule.nunique()
    assert (rules_per_row == 1).all()
    assert (gen.gt.groupby(["defect_id"])[["rule", "epr_key"]].nunique() == 1).all().all()
    assert not gen.gt.duplicated(["defect_id", "period"]).any()


def test_ground_truth_rows_are_in_the_expected_keys(gen):
    keys = set(zip(gen.keys.period, gen.keys.mhsds_table, gen.keys.epr_key, strict=True))
    table_of = {
        "interventions": "mhs202_care_activity",
        "appointments": "mhs201_care_contact",
        "patients": "mhs001_mpi",
        "referrals": "mhs101_referral",
        "admissions": "mhs501_hosp_prov_spell",
        "ward_movements": "mhs502_ward_stay",
    }
    tables_in = {(p, t) for p, t, _ in keys}
    for row in gen.gt.itertuples():
        mhsds = table_of.get(row.epr_table, row.mhsds_table)
        if re.fullmatch(r"MHS\d{5}", row.rule):
            # a generated v6 table's defect: ground truth holds the MHSDS row key (the rule
            # engine's), expected_keys the EPR record_id; its table is extracted that period
            assert (row.period, mhsds) in tables_in, row
            continue
        assert (row.period, mhsds, row.epr_key) in keys, row
        assert row.mhsds_table == RULES[row.rule].mhsds_table or row.rule in (
            "ASSESSMENT_SCORE_OUT_OF_RANGE",
            "DIAGNOSIS_FREE_TEXT",
        )


def test_planted_defects_have_the_described_property(gen):
    t, gt = gen.t, gen.gt
    pat = t["patients"].set_index("patient_id")
    for key in gen.defect_keys("NHS_NUMBER_INVALID"):
        nhs = pat.at[key, "nhs_number"]
        assert len(nhs) == 10 and nhs.startswith("999") and not nhs_number_is_valid(nhs)
    for key in gen.defect_keys("NHS_NUMBER_MISSING"):
        assert pd.isna(pat.at[key, "nhs_number"]) and pat.at[key, "nhs_number_status"] != "07"
    for key in gen.defect_keys("POSTCODE_DEFAULT"):
        assert pat.at[key, "postcode"] in ("ZZ99 3VZ", "ZZ99 3WZ")
    for key in gen.defect_keys("POSTCODE_INVALID"):
        pc = pat.at[key, "postcode"]
        assert isinstance(pc, str) and not postcode_is_valid(pc) and not is_default_postcode(pc)
    for key in gen.defect_keys("ETHNICITY_NOT_KNOWN"):
        assert pat.at[key, "ethnicity"] == "99"

    iv = t["interventions"].set_index("intervention_id")
    stems = {c[:-1] for c in VALUESET}
    for key in gen.defect_keys("SNOMED_CHECK_DIGIT"):
        code = iv.at[key, "snomed_procedure"]
        assert code[:-1] in stems and code not in VALUESET and not verhoeff_is_valid(code)
        assert sctid_partition(code) in ("00", "10")
    for key in gen.defect_keys("SNOMED_PARTITION"):
        code = iv.at[key, "snomed_procedure"]
        assert verhoeff_is_valid(code) and sctid_partition(code) in {f"0{d}" for d in range(3, 10)}
        assert not sctid_is_valid(code)
    for key in gen.defect_keys("SNOMED_NOT_IN_REFSET"):
        code = iv.at[key, "snomed_procedure"]
        assert sctid_is_valid(code) and sctid_partition(code) == "00" and code not in VALUESET

    asm = t["assessments"].set_index("assessment_id")
    for key in gen.defect_keys("ASSESSMENT_SCORE_OUT_OF_RANGE"):
        tool = TOOLS[asm.at[key, "tool_snomed"]]
        score = int(asm.at[key, "score"])
        assert not int(tool["min_score"]) <= score <= int(tool["max_score"])
        level = gt.loc[
            (gt.rule == "ASSESSMENT_SCORE_OUT_OF_RANGE") & (gt.epr_key == key), "mhsds_table"
        ].iloc[0]
        assert level == (
            "mhs606_coded_score_assessment_refer"
            if pd.isna(asm.at[key, "intervention_id"])
            else "mhs607_coded_score_assessment_act"
        )

    ap = t["appointments"]
    ref_ids = set(t["referrals"].referral_id)
    late = gt[gt.rule == "CONTACT_OUTSIDE_PERIOD"]
    by_id = ap.set_index("appointment_id")
    for row in late.itertuples():
        a = by_id.loc[row.epr_key]
        assert a.recorded_at[:7] == row.period and a.start_at[:7] < row.period
        assert a.referral_id in ref_ids
        r = t["referrals"].set_index("referral_id").loc[a.referral_id]
        assert pd.isna(r.discharged_at) or r.discharged_at >= row.period  # still extracted that month
    for key in gen.defect_keys("ORPHAN_CONTACT"):
        assert by_id.at[key, "referral_id"] not in ref_ids
    counts = ap.appointment_id.value_counts()
    for key in gen.defect_keys("DUPLICATE_CONTACT_ID"):
        assert counts[key] == 2
        rows = ap[ap.appointment_id == key]
        assert rows.recorded_at.iloc[1] >= rows.recorded_at.iloc[0]

    ref = t["referrals"].set_index("referral_id")
    pat_ids = set(pat.index)
    for key in gen.defect_keys("ORPHAN_REFERRAL"):
        assert ref.at[key, "patient_id"] not in pat_ids
        assert not (t["gp_registrations"].patient_id == ref.at[key, "patient_id"]).any()
    for key in gen.defect_keys("DATE_ORDER_REFERRAL"):
        assert ref.at[key, "discharged_at"] < ref.at[key, "received_at"]
    adm = t["admissions"].set_index("admission_id")
    for key in gen.defect_keys("DATE_ORDER_SPELL"):
        assert adm.at[key, "discharged_at"] < adm.at[key, "admitted_at"]
    wm = t["ward_movements"].set_index("ward_stay_id")
    for key in gen.defect_keys("DATE_ORDER_WARD_STAY"):
        assert wm.at[key, "end_at"] < wm.at[key, "start_at"]

    # Hostile and malformed values (issue 10).
    for key in gen.defect_keys("OVERSIZE_CODE"):
        assert len(ref.at[key, "commissioner_code"]) == OVERSIZE_LENGTH
    for key in gen.defect_keys("POSTCODE_CONTROL_CHARACTER"):
        pc = pat.at[key, "postcode"]
        assert re.search("[\r\n\x1b]", pc) and " " not in pc and len(pc) <= 10
    dx_all = t["diagnoses"].set_index("diagnosis_id")
    for r in gt[gt.rule == "DIAGNOSIS_FREE_TEXT"].itertuples():
        d = dx_all.loc[r.epr_key]
        assert d.scheme == "02" and d.code in DIAGNOSIS_FREE_TEXT and len(d.code) <= 18
        secondary = d["rank"] == "S"
        assert (r.mhsds_table, r.column) == (
            ("mhs605_sec_diag", "SecDiag") if secondary else ("mhs604_prim_diag", "PrimDiag")
        )
    for key in gen.defect_keys("FORMULA_LIKE_TEXT"):
        clinician = asm.at[key, "clinician_id"]
        assert clinician.startswith("=") and len(clinician) <= 20 and pd.isna(asm.at[key, "intervention_id"])
    for key in gen.defect_keys("MALFORMED_DATE"):
        text = adm.at[key, "planned_discharge_on"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)
        with pytest.raises(ValueError):
            date.fromisoformat(text)
    assert gen.gt[gen.gt.rule == "DIAGNOSIS_FREE_TEXT"].mhsds_table.nunique() >= 1

    # Orphans: the parent is missing from the EPR, or closed before the (only) month the orphan
    # is extracted in; both kinds are planted.
    def parent_state(parent_id, parents, closed_col, period):
        if parent_id not in parents.index:
            return "missing"
        closed = parents.at[parent_id, closed_col]
        assert isinstance(closed, str) and closed[:7] < period, (parent_id, closed, period)
        return "closed"

    dx = t["diagnoses"].set_index("diagnosis_id")
    rt = t["referral_teams"]
    asm_all = t["assessments"].set_index("assessment_id")
    for rule, rows, parent_col, parents, closed_col in (
        ("ORPHAN_SPELL", adm, "referral_id", ref, "discharged_at"),
        ("ORPHAN_WARD_STAY", wm, "admission_id", adm, "discharged_at"),
        ("ORPHAN_DIAGNOSIS", dx, "referral_id", ref, "discharged_at"),
        ("ORPHAN_ASSESSMENT", asm_all, "referral_id", ref, "discharged_at"),
    ):
        found = gt[gt.rule == rule]
        assert not found.epr_key.duplicated().any(), f"{rule}: an orphan is in one period only"
        states = {
            parent_state(rows.at[r.epr_key, parent_col], parents, closed_col, r.period)
            for r in found.itertuples()
        }
        assert states == {"missing", "closed"}, rule
    for r in gt[gt.rule == "ORPHAN_ASSESSMENT"].itertuples():
        assert pd.isna(asm_all.at[r.epr_key, "intervention_id"])
    rt_key = rt.referral_id + "|" + rt.team_id
    found = gt[gt.rule == "ORPHAN_REFERRAL_TEAM"]
    assert not found.epr_key.duplicated().any()
    states = set()
    for r in found.itertuples():
        row = rt[rt_key == r.epr_key].iloc[0]
        states.add(parent_state(row.referral_id, ref, "discharged_at", r.period))
        assert row.assigned_on[:7] == r.period and row.closed_on[:7] == r.period
    assert states == {"missing", "closed"}


def test_no_clean_row_breaks_a_rule(gen):
    t = gen.t
    pat = t["patients"]
    clean = pat[~pat.patient_id.isin(gen.table_defect_keys("patients"))]
    assert clean.nhs_number.map(nhs_number_is_valid).all()
    assert clean.nhs_number.str.startswith("999").all() and (clean.nhs_number_status == "01").all()
    assert clean.postcode.map(postcode_is_valid).all() and not clean.postcode.map(is_default_postcode).any()
    assert (clean.ethnicity != "99").all()
    assert pat.patient_id.is_unique and pat.nhs_number.dropna().is_unique
    assert not pat.stated_gender.isin(["X"]).any() and not pat.gender_identity.isin(["X"]).any()
    rt = t["referral_teams"]
    assert rt.closed_on[rt.rejected_on.notna()].notna().all()
    assert rt.closure_reason[rt.closed_on.notna()].notna().all()
    assert not rt.duplicated(["referral_id", "team_id"]).any()

    iv = t["interventions"]
    clean_iv = iv[~iv.intervention_id.isin(gen.table_defect_keys("interventions"))]
    assert clean_iv.snomed_procedure.isin(VALUESET).all()
    assert clean_iv.snomed_procedure.map(sctid_is_valid).all()
    assert iv.intervention_id.is_unique

    asm = t["assessments"]
    clean_as = asm[~asm.assessment_id.isin(gen.table_defect_keys("assessments"))]
    lo = clean_as.tool_snomed.map(lambda c: int(TOOLS[c]["min_score"]))
    hi = clean_as.tool_snomed.map(lambda c: int(TOOLS[c]["max_score"]))
    score = clean_as.score.astype(int)
    assert ((lo <= score) & (score <= hi)).all()
    assert asm.tool_snomed.isin(TOOLS).all()

    ap = t["appointments"]
    bad_ap = gen.table_defect_keys("appointments")
    first_rows = ~ap.duplicated("appointment_id", keep="first")
    clean_ap = ap[
        ~ap.appointment_id.isin(bad_ap)
        | (first_rows & ap.appointment_id.isin(gen.defect_keys("DUPLICATE_CONTACT_ID")))
    ]
    assert (_month(clean_ap.start_at) == _month(clean_ap.recorded_at)).all()
    assert clean_ap.referral_id.isin(t["referrals"].referral_id).all()
    assert (
        not ap[~ap.appointment_id.isin(gen.defect_keys("DUPLICATE_CONTACT_ID"))]
        .appointment_id.duplicated()
        .any()
    )

    ref = t["referrals"]
    clean_ref = ref[~ref.referral_id.isin(gen.table_defect_keys("referrals"))]
    assert clean_ref.patient_id.isin(pat.patient_id).all()
    assert clean_ref.commissioner_code.str.fullmatch(r"\d\d[A-Z]").all()
    assert clean_as.clinician_id.str.fullmatch(r"HCP\d{5}").all()
    assert not clean.postcode.str.contains("[\x00-\x1f]").any()
    closed = clean_ref.discharged_at.notna()
    assert (clean_ref.discharged_at[closed] >= clean_ref.received_at[closed]).all()
    assert ref.referral_id.is_unique

    adm = t["admissions"]
    planned = adm.planned_discharge_on[~adm.admission_id.isin(gen.table_defect_keys("admissions"))]
    assert planned.dropna().map(date.fromisoformat).notna().all()
    clean_adm = adm[~adm.admission_id.isin(gen.table_defect_keys("admissions")) & adm.discharged_at.notna()]
    assert (clean_adm.discharged_at >= clean_adm.admitted_at).all()
    wm = t["ward_movements"]
    clean_wm = wm[~wm.ward_stay_id.isin(gen.table_defect_keys("ward_movements")) & wm.end_at.notna()]
    assert (clean_wm.end_at >= clean_wm.start_at).all()


def test_assessment_tools_suit_the_age(gen):
    asm = gen.t["assessments"].merge(gen.t["referrals"][["referral_id", "patient_id"]], on="referral_id")
    asm = asm.merge(gen.t["patients"][["patient_id", "date_of_birth"]], on="patient_id")
    years = (pd.to_datetime(asm.completed_at) - pd.to_datetime(asm.date_of_birth)).dt.days / 365.25
    band = asm.tool_snomed.map(lambda c: TOOLS[c]["age_band"])
    assert (years[band == "CYP"] < 18).all()
    assert (years[band == "ADULT"] >= 18).all()


def test_vectorised_nhs_check_digit_matches_identifiers():
    bodies = np.arange(999_000_000, 999_003_000, dtype=np.int64)
    vec = nhs_check_digits(bodies)
    for body, check in zip(bodies.tolist(), vec.tolist(), strict=True):
        ref = nhs_number_check_digit(str(body))
        assert (ref is None and check == 10) or ref == check


def test_clean_generation_has_no_defects(tmp_path):
    summary = generate(
        f"sqlite:///{tmp_path / 'epr.sqlite'}",
        scale=0.02,
        seed=3,
        end_period=END,
        months=1,
        out_dir=tmp_path,
        defect_rates=DefectRates.none(),
    )
    assert sum(summary.defects.values()) == 0
    assert (tmp_path / "ground_truth.csv").read_text().strip() == ",".join(
        ["defect_id", "rule", "epr_table", "epr_key", "mhsds_table", "column", "period"]
    )
    con = sqlite3.connect(tmp_path / "epr.sqlite")
    nhs = [r[0] for r in con.execute("SELECT nhs_number FROM patients")]
    con.close()
    assert all(nhs_number_is_valid(n) for n in nhs)


def test_rates_can_be_exact_counts(tmp_path):
    rates = DefectRates(orphan_contact=5, date_order_spell=2, nhs_number_invalid=0, min_per_month=0)
    summary = generate(
        f"sqlite:///{tmp_path / 'epr.sqlite'}",
        scale=0.02,
        seed=5,
        end_period=END,
        months=2,
        out_dir=tmp_path,
        defect_rates=rates,
    )
    assert summary.defects["ORPHAN_CONTACT"] == 10
    assert summary.defects["DATE_ORDER_SPELL"] == 4
    assert summary.defects["NHS_NUMBER_INVALID"] == 0
    gt = pd.read_csv(tmp_path / "ground_truth.csv", dtype=str)
    assert (gt[gt.rule == "ORPHAN_CONTACT"].groupby("period").size() == 5).all()


# --- expected keys ------------------------------------------------------------------------------


def test_expected_keys_shape(gen):
    k = gen.keys
    assert list(k.columns) == ["period", "mhsds_table", "epr_key"]
    assert sorted(k.period.unique()) == PERIODS
    assert "mhs000_header" not in set(k.mhsds_table)
    assert len(k) == gen.summary.expected_key_rows


def test_expected_keys_follow_the_scope_rules(gen):
    """Independent spot checks of expected_keys against the contract, table by table."""
    t, k = gen.t, gen.keys
    for period in PERIODS:
        start, end = f"{period}-01 00:00:00", _next_month(period) + "-01 00:00:00"
        keys = k[k.period == period]
        ap_keys = keys[keys.mhsds_table == "mhs201_care_contact"].epr_key
        ap = t["appointments"]
        in_rp = ((ap.start_at >= start) & (ap.start_at < end)) | (
            (ap.recorded_at >= start) & (ap.recorded_at < end)
        )
        assert sorted(ap_keys) == sorted(ap.appointment_id[in_rp])
        ref = t["referrals"]
        open_ = (
            (ref.received_at < end)
            & (ref.discharged_at.isna() | (ref.discharged_at >= start))
            & (ref.rejected_on.isna() | (ref.rejected_on >= start[:10]))
        )
        ref_keys = set(keys[keys.mhsds_table == "mhs101_referral"].epr_key)
        assert ref_keys == set(ref.referral_id[open_])
        pat_keys = set(keys[keys.mhsds_table == "mhs001_mpi"].epr_key)
        assert pat_keys == set(ref.patient_id[open_]) & set(t["patients"].patient_id)
        dx = t["diagnoses"]
        dx_keys = set(keys[keys.mhsds_table.isin(["mhs604_prim_diag", "mhs605_sec_diag"])].epr_key)
        # as at RP end: diagnoses coded after the month are not yet known; one coded in the month
        # belongs to it whatever its referral (an orphan when the referral is not in scope)
        coded_in_rp = (dx.diagnosed_at >= start) & (dx.diagnosed_at < end)
        assert dx_keys == set(
            dx.diagnosis_id[(dx.referral_id.isin(ref_keys) & (dx.diagnosed_at < end)) | coded_in_rp]
        )
        # spells, ward stays, other teams and referral-level assessments: by their own dates
        adm = t["admissions"]
        adm_open = (adm.admitted_at < end) & (adm.discharged_at.isna() | (adm.discharged_at >= start))
        adm_keys = set(keys[keys.mhsds_table == "mhs501_hosp_prov_spell"].epr_key)
        assert adm_keys == set(adm.admission_id[adm_open])
        wm = t["ward_movements"]
        wm_open = (wm.start_at < end) & (wm.end_at.isna() | (wm.end_at >= start))
        assert set(keys[keys.mhsds_table == "mhs502_ward_stay"].epr_key) == set(wm.ward_stay_id[wm_open])
        asm = t["assessments"]
        refl = asm.intervention_id.isna() & (asm.completed_at >= start) & (asm.completed_at < end)
        want_606 = set(asm.assessment_id[refl])
        assert set(keys[keys.mhsds_table == "mhs606_coded_score_assessment_refer"].epr_key) == want_606
        iv_keys = set(keys[keys.mhsds_table == "mhs202_care_activity"].epr_key)
        iv = t["interventions"]
        assert iv_keys == set(iv.intervention_id[iv.appointment_id.isin(set(ap_keys))])
        # indirect activity, like contacts: dated or keyed in the month
        ia = t["indirect_activities"]
        ia_in = ((ia.start_at >= start) & (ia.start_at < end)) | (
            (ia.recorded_at >= start) & (ia.recorded_at < end)
        )
        ia_keys = keys[keys.mhsds_table == "mhs204_indirect_activity"].epr_key
        assert sorted(ia_keys) == sorted(ia.indirect_activity_id[ia_in])


def _next_month(period: str) -> str:
    y, m = (int(x) for x in period.split("-"))
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


_KEY_COLUMNS = {
    "patients": ("mhs001_mpi", ["patient_id"]),
    "gp_registrations": ("mhs002_gp", ["patient_id", "practice_code", "registered_on"]),
    "referrals": ("mhs101_referral", ["referral_id"]),
    "referral_teams": ("mhs102_other_service_type", ["referral_id", "team_id"]),
    "appointments": ("mhs201_care_contact", ["appointment_id"]),
    "interventions": ("mhs202_care_activity", ["intervention_id"]),
    "indirect_activities": ("mhs204_indirect_activity", ["indirect_activity_id"]),
    "admissions": ("mhs501_hosp_prov_spell", ["admission_id"]),
    "ward_movements": ("mhs502_ward_stay", ["ward_stay_id"]),
    "teams": ("mhs902_service_team_details", ["team_id"]),
}


def test_expected_keys_equal_the_sql_extract_scope(gen):
    """The numpy scope (generator) and the SQL pushdown (extract.py) must agree row for row."""
    extract = pytest.importorskip("mhsds_pipeline.extract")
    from mhsds_pipeline.period import ReportingPeriod

    def only(query, *cols):
        # the scope's WHERE and ORDER BY, selecting only the columns compared: a planted
        # impossible date elsewhere in the row is not converted (the extract parses cells itself)
        return query.with_only_columns(*(query.selected_columns[c] for c in cols))

    engine = create_engine(f"sqlite:///{gen.db}")
    try:
        with engine.connect() as conn:
            for period in PERIODS:
                queries = extract.scoped_queries(ReportingPeriod.parse(period))
                want = gen.keys[gen.keys.period == period]
                for table, (mhsds, cols) in _KEY_COLUMNS.items():
                    rows = conn.execute(only(queries[table], *cols)).mappings().all()
                    got = sorted("|".join("" if r[c] is None else str(r[c]) for c in cols) for r in rows)
                    assert got == sorted(want[want.mhsds_table == mhsds].epr_key), (period, table)
                rows = conn.execute(only(queries["diagnoses"], "diagnosis_id", "rank")).mappings().all()
                for rank, mhsds in (("P", "mhs604_prim_diag"), ("S", "mhs605_sec_diag")):
                    got = sorted(r["diagnosis_id"] for r in rows if r["rank"] == rank)
                    assert got == sorted(want[want.mhsds_table == mhsds].epr_key), (period, mhsds)
                rows = (
                    conn.execute(only(queries["assessments"], "assessment_id", "intervention_id"))
                    .mappings()
                    .all()
                )
                for activity, mhsds in (
                    (False, "mhs606_coded_score_assessment_refer"),
                    (True, "mhs607_coded_score_assessment_act"),
                ):
                    got = sorted(
                        r["assessment_id"] for r in rows if (r["intervention_id"] is not None) == activity
                    )
                    assert got == sorted(want[want.mhsds_table == mhsds].epr_key), (period, mhsds)
    finally:
        engine.dispose()


# --- PostgreSQL ---------------------------------------------------------------------------------


def _postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.postgres
@pytest.mark.skipif(not _postgres_up(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_postgres_load_matches_sqlite(tmp_path):
    name = f"mhsds_epr_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pg_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    try:
        (tmp_path / "pg").mkdir()
        (tmp_path / "lite").mkdir()
        pg = generate(pg_url, scale=0.02, seed=11, end_period=END, months=2, out_dir=tmp_path / "pg")
        lite = generate(
            f"sqlite:///{tmp_path / 'lite' / 'epr.sqlite'}",
            scale=0.02,
            seed=11,
            end_period=END,
            months=2,
            out_dir=tmp_path / "lite",
        )
        assert pg.row_counts == lite.row_counts
        assert (tmp_path / "pg" / "expected_keys.parquet").read_bytes() == (
            tmp_path / "lite" / "expected_keys.parquet"
        ).read_bytes()
        # An impossible date can only be stored by SQLite: PostgreSQL gets every other defect,
        # with the same ids (MALFORMED_DATE is numbered last), and a clean planned discharge date.
        lite_truth = (tmp_path / "lite" / "ground_truth.csv").read_text().splitlines()
        malformed = [line for line in lite_truth if ",MALFORMED_DATE," in line]
        assert malformed and pg.defects["MALFORMED_DATE"] == 0
        kept = [line for line in lite_truth if line not in malformed]
        assert (tmp_path / "pg" / "ground_truth.csv").read_text().splitlines() == kept
        malformed_ids = {line.split(",")[3] for line in malformed}
        engines = [create_engine(pg_url), create_engine(f"sqlite:///{tmp_path / 'lite' / 'epr.sqlite'}")]
        try:
            for table in schema.metadata.sorted_tables:
                contents = []
                for engine in engines:
                    with engine.connect() as conn:
                        count = conn.execute(select(text("count(*)")).select_from(table)).scalar()
                        assert count == lite.row_counts[table.name]
                        query = select(table)
                        if table.name == "admissions":  # the SQLite-only impossible dates
                            query = query.where(table.c.admission_id.not_in(sorted(malformed_ids)))
                        contents.append(sorted(map(tuple, conn.execute(query).all()), key=repr))
                assert contents[0] == contents[1], table.name
            with engines[0].connect() as conn:
                indexes = conn.execute(
                    text("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")
                ).scalar()
            assert indexes == sum(len(t.indexes) for t in schema.metadata.sorted_tables)
        finally:
            for engine in engines:
                engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
