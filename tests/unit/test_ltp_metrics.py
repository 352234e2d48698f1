"""LTP metric definitions on small hand-built published MHSDS months whose answers are known.

Every case is written so the expected count can be checked by reading the rows: 17/18th and 29
February birthdays, contacts on the first and last day of the window, DNAs and non-direct
mechanisms, rolling windows, missing months, and disclosure control on the published values.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from mhsds_pipeline.finance import activity, ltp_metrics
from mhsds_pipeline.finance.fixtures import write_published_month
from mhsds_pipeline.finance.mhis import read_seed
from mhsds_pipeline.finance.published import find_published, months_back, open_history
from mhsds_pipeline.privacy import controlled_rate, disclosure_control, round_to_5

pytestmark = pytest.mark.unit

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "finance"
CODES = ltp_metrics.load_metric_codes(SEEDS)
PERIOD = "2026-11"  # window 2025-12-01 .. 2026-11-30


class Data:
    """Rows of hand-built MHSDS tables, spread over months by the date of each record."""

    def __init__(self) -> None:
        self.teams: list[dict] = []
        self.people: dict[str, dict] = {}
        self.referrals: dict[str, dict] = {}
        self.contacts: list[dict] = []
        self.activities: list[dict] = []
        self.spells: list[dict] = []
        self.stays: list[dict] = []

    def team(self, team_id: str, team_type: str, age_group: str = "01") -> None:
        self.teams.append(
            {"CareProfTeamLocalID": team_id, "ServTeamTypeMH": team_type, "ServTeamIntAgeGroup": age_group}
        )

    def person(
        self, pid: str, dob: str, gid: str | None = "2", gender: str | None = "2", same: str | None = None
    ):
        self.people[pid] = {
            "LocalPatientID": pid,
            "PersonBirthDate": dob,
            "GenderIDCode": gid,
            "Gender": gender,
            "GenderSameAtBirth": same,
        }

    def referral(self, rid: str, pid: str, team: str, received: str) -> None:
        self.referrals[rid] = {
            "ServiceRequestID": rid,
            "LocalPatientID": pid,
            "CareProfTeamLocalID": team,
            "ReferralRequestReceivedDate": received,
        }

    def contact(
        self, cid: str, rid: str, day: str, attend: str = "5", mech: str = "01", team: str | None = None
    ) -> None:
        self.contacts.append(
            {
                "CareContactID": cid,
                "ServiceRequestID": rid,
                "CareContDate": day,
                "CareContTime": "10:00:00",
                "OtherCareProfTeamLocalID": team,
                "AttendStatus": attend,
                "ConsMechanismMH": mech,
            }
        )

    def spell(self, sid: str, rid: str, start: str, end: str | None, classes: list[str]) -> None:
        self.spells.append(
            {
                "HospProvSpellID": sid,
                "ServiceRequestID": rid,
                "StartDateHospProvSpell": start,
                "DischDateHospProvSpell": end,
            }
        )
        for k, cls in enumerate(classes):
            self.stays.append(
                {
                    "WardStayID": f"{sid}-{k}",
                    "HospProvSpellID": sid,
                    "StartDateWardStay": start,
                    "EndDateWardStay": end if k == len(classes) - 1 else start,
                    "MHAdmittedPatientClass": cls,
                }
            )

    def publish(self, output: Path, months: list[str]) -> None:
        """Each month carries the reference rows and the activity dated in it (spells in every
        month they overlap, like the extract scope)."""
        for month in months:
            first, last = f"{month}-01", f"{month}-31"
            write_published_month(
                output,
                month,
                {
                    "MHS902ServiceTeamDetails": self.teams,
                    "MHS001MPI": list(self.people.values()),
                    "MHS101Referral": list(self.referrals.values()),
                    "MHS201CareContact": [c for c in self.contacts if c["CareContDate"][:7] == month],
                    "MHS202CareActivity": [
                        a for a in self.activities if self._contact_month(a["CareContactID"]) == month
                    ],
                    "MHS501HospProvSpell": [
                        s
                        for s in self.spells
                        if s["StartDateHospProvSpell"] <= last
                        and (s["DischDateHospProvSpell"] or "9999") >= first
                    ],
                    "MHS502WardStay": [
                        w
                        for w in self.stays
                        if w["StartDateWardStay"] <= last and (w["EndDateWardStay"] or "9999") >= first
                    ],
                },
            )

    def _contact_month(self, cid: str) -> str:
        return next(c["CareContDate"][:7] for c in self.contacts if c["CareContactID"] == cid)


def _raw(tmp_path: Path, data: Data, period: str = PERIOD, months: list[str] | None = None) -> dict:
    months = months or months_back(period, 12)
    data.publish(tmp_path, months)
    history = find_published(tmp_path, period, 24)
    con = open_history(history)
    try:
        start = date.fromisoformat(history.available[0] + "-01")
        return ltp_metrics.raw_values(con, period, CODES, start)
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# MHS95 - CYP with at least one contact
# ---------------------------------------------------------------------------------------------


def test_mhs95_birthdays_boundaries_dnas_and_mechanisms(tmp_path):
    d = Data()
    d.team("T1", "A06", "02")
    # counted: 17 at referral and on the day before the 18th birthday; two contacts, once
    d.person("P1", "2008-11-15")
    d.referral("R1", "P1", "T1", "2026-09-01")
    d.contact("C1", "R1", "2026-11-14")
    d.contact("C1b", "R1", "2026-10-02")
    # not counted: the contact is on the 18th birthday
    d.person("P2", "2008-11-10")
    d.referral("R2", "P2", "T1", "2026-09-01")
    d.contact("C2", "R2", "2026-11-10")
    # not counted: DNA (3), arrived late not seen (7), e-mail (05) are not direct attended contacts
    d.person("P3", "2010-01-01")
    d.referral("R3", "P3", "T1", "2026-01-01")
    d.contact("C3", "R3", "2026-02-01", attend="3")
    d.contact("C3b", "R3", "2026-03-01", attend="7")
    d.contact("C3c", "R3", "2026-04-01", mech="05")
    # counted: first and last day of the window; not counted: the day before the window
    d.person("P4", "2012-05-05")
    d.referral("R4", "P4", "T1", "2025-11-01")
    d.contact("C4", "R4", "2025-12-01")
    d.person("P5", "2012-05-05")
    d.referral("R5", "P5", "T1", "2025-11-01")
    d.contact("C5", "R5", "2025-11-30")
    d.person("P6", "2012-05-05")
    d.referral("R6", "P6", "T1", "2026-11-01")
    d.contact("C6", "R6", "2026-11-30", mech="11")
    # not counted: 18 at referral (18th birthday that day)
    d.person("P7", "2008-03-01")
    d.referral("R7", "P7", "T1", "2026-03-01")
    d.contact("C7", "R7", "2026-04-01")
    # born 29 February: 17 on 28 February 2026 (counted), 18 on 1 March 2026 (not counted)
    d.person("P8", "2008-02-29")
    d.referral("R8", "P8", "T1", "2026-02-28")
    d.contact("C8", "R8", "2026-02-28", mech="02")
    d.person("P9", "2008-02-29")
    d.referral("R9", "P9", "T1", "2026-02-01")
    d.contact("C9", "R9", "2026-03-01")
    months = months_back(PERIOD, 13)  # 2025-11 is published but before the window
    raw = _raw(tmp_path, d, months=months)
    assert raw["MHS95"]["value"] == 4  # P1, P4, P6, P8


def test_rolling_window_moves_with_the_period(tmp_path):
    d = Data()
    d.team("T1", "A06", "02")
    d.person("P1", "2012-01-01")
    d.referral("R1", "P1", "T1", "2025-12-01")
    d.contact("C1", "R1", "2025-12-15")
    d.person("P2", "2012-01-01")
    d.referral("R2", "P2", "T1", "2026-12-01")
    d.contact("C2", "R2", "2026-12-15")
    d.publish(tmp_path, months_back("2026-12", 13))
    history = find_published(tmp_path, "2026-12", 24)
    con = open_history(history)
    start = date(2025, 12, 1)
    assert ltp_metrics.raw_values(con, "2026-11", CODES, start)["MHS95"]["value"] == 1  # P1 only
    assert ltp_metrics.raw_values(con, "2026-12", CODES, start)["MHS95"]["value"] == 1  # P2 only
    assert ltp_metrics.raw_values(con, "2025-12", CODES, start)["MHS95"]["value"] == 1  # P1 only
    con.close()


# ---------------------------------------------------------------------------------------------
# MHS91 - perinatal access
# ---------------------------------------------------------------------------------------------


def test_mhs91_gender_rules_team_and_mechanism(tmp_path):
    d = Data()
    d.team("TP", "C02")
    d.team("TC", "A06")
    cases = {
        # pid: (GenderIDCode, Gender, GenderSameAtBirth, team, mechanism, attend, counted)
        "Q1": ("2", "2", None, "TP", "01", "5", True),
        "Q2": ("3", "1", None, "TP", "11", "6", True),  # non-binary, video
        "Q3": ("1", "1", "N", "TP", "01", "5", True),  # gender not the same as at birth
        "Q4": (None, "2", None, "TP", "01", "5", True),  # identity missing, stated gender female
        "Q5": ("1", "1", "Y", "TP", "01", "5", False),
        "Q6": ("2", "2", None, "TP", "02", "5", False),  # telephone does not count for MHS91
        "Q7": ("2", "2", None, "TC", "01", "5", False),  # not a perinatal team
        "Q8": ("2", "2", None, "TP", "01", "3", False),  # DNA
        "Q9": ("X", "2", None, "TP", "01", "5", False),  # identity 'not known' is not missing
    }
    for k, (pid, (gid, gender, same, team, mech, attend, _)) in enumerate(cases.items()):
        d.person(pid, "1990-01-01", gid=gid, gender=gender, same=same)
        d.referral(f"R{pid}", pid, team, "2026-01-01")
        d.contact(f"C{k}", f"R{pid}", "2026-05-05", attend=attend, mech=mech, team=team)
    raw = _raw(tmp_path, d)
    assert raw["MHS91"]["value"] == sum(case[-1] for case in cases.values()) == 4


# ---------------------------------------------------------------------------------------------
# MHS108 - adults with 2+ contacts with community MH services
# ---------------------------------------------------------------------------------------------


def test_mhs108_second_contact_in_window(tmp_path):
    d = Data()
    d.team("T5", "A06")
    d.team("T6", "A14", "03")
    d.team("T7", "A02", "03")
    for pid in ("A1", "A2", "A3", "A4", "A5", "A7", "A8"):
        d.person(pid, "1980-06-01")
    d.person("A6", "2008-12-01")
    # A1: 2nd contact in the window; referral received before the history read (caveat)
    d.referral("RA1", "A1", "T5", "2024-01-01")
    d.contact("A1a", "RA1", "2026-01-10")
    d.contact("A1b", "RA1", "2026-02-10", mech="02")
    # A1 again on another referral: counted once
    d.referral("RA1x", "A1", "T5", "2026-01-01")
    d.contact("A1c", "RA1x", "2026-03-10")
    d.contact("A1d", "RA1x", "2026-04-10")
    # A2: one contact only
    d.referral("RA2", "A2", "T5", "2026-01-01")
    d.contact("A2a", "RA2", "2026-03-01")
    # A3: 2nd contact before the window (published months before it)
    d.referral("RA3", "A3", "T5", "2025-05-01")
    d.contact("A3a", "RA3", "2025-06-01")
    d.contact("A3b", "RA3", "2025-07-01")
    d.contact("A3c", "RA3", "2026-01-05")
    # A4: inpatient spell in the same financial year as the 2nd contact
    d.referral("RA4", "A4", "T5", "2026-01-01")
    d.contact("A4a", "RA4", "2026-01-10")
    d.contact("A4b", "RA4", "2026-02-10")
    d.spell("S4", "RA4", "2026-03-01", "2026-03-20", ["200"])
    # A5: crisis team is not a core community team
    d.referral("RA5", "A5", "T7", "2026-01-01")
    d.contact("A5a", "RA5", "2026-01-10")
    d.contact("A5b", "RA5", "2026-02-10")
    # A6: 17 at referral
    d.referral("RA6", "A6", "T5", "2026-01-01")
    d.contact("A6a", "RA6", "2026-02-10")
    d.contact("A6b", "RA6", "2026-03-10")
    # A7: a DNA first; the 2nd attended direct contact is in the window
    d.referral("RA7", "A7", "T5", "2026-01-01")
    d.contact("A7a", "RA7", "2026-01-10", attend="3")
    d.contact("A7b", "RA7", "2026-02-10")
    d.contact("A7c", "RA7", "2026-03-10", mech="04")
    # A8: EIP counts from April 2023
    d.referral("RA8", "A8", "T6", "2026-01-01")
    d.contact("A8a", "RA8", "2026-05-10")
    d.contact("A8b", "RA8", "2026-06-10", mech="11")
    raw = _raw(tmp_path, d, months=months_back(PERIOD, 18))  # history from 2025-06
    assert raw["MHS108"]["value"] == 3  # A1, A7, A8
    assert raw["MHS108"]["caveat_people"] == 1  # A1 (referral received 2024-01-01)


def test_mhs108_team_types_follow_their_start_date(tmp_path):
    import duckdb

    con = duckdb.connect()
    query = "SELECT code FROM ltp_code WHERE metric_id = 'MHS108' AND code_list = 'serv_team_type'"
    ltp_metrics._set_codes(con, CODES, date(2023, 3, 31))
    before = {r[0] for r in con.execute(query).fetchall()}
    ltp_metrics._set_codes(con, CODES, date(2023, 4, 30))
    after = {r[0] for r in con.execute(query).fetchall()}
    assert "A14" not in before and "D05" not in before and "A06" in before
    assert after - before == {"A14", "D05"}


# ---------------------------------------------------------------------------------------------
# MHS116 - IPS access (referrals)
# ---------------------------------------------------------------------------------------------


def test_mhs116_counts_referrals_by_team_or_snomed(tmp_path):
    d = Data()
    d.team("T8", "D05")
    d.team("T5", "A06")
    for pid in ("I1", "I2", "I3", "I4", "I5"):
        d.person(pid, "1985-01-01")
    d.referral("RI1", "I1", "T8", "2026-01-01")  # one person, two IPS referrals: 2
    d.referral("RI2", "I1", "T8", "2026-05-01")
    d.contact("CI1", "RI1", "2026-02-01")
    d.contact("CI2", "RI2", "2026-06-01", mech="02")
    d.referral("RI3", "I2", "T5", "2026-01-01")  # CMHT contact carrying an IPS procedure: 1
    d.contact("CI3", "RI3", "2026-03-01")
    d.activities.append({"CareActID": "X3", "CareContactID": "CI3", "Procedure": "1082621000000104"})
    d.referral("RI4", "I3", "T5", "2026-01-01")  # IPS procedure with the excluded qualifier
    d.contact("CI4", "RI4", "2026-03-01")
    d.activities.append(
        {"CareActID": "X4", "CareContactID": "CI4", "Procedure": "772822000:408730004=443390004"}
    )
    d.referral("RI5", "I4", "T8", "2015-12-31")  # received before 2016
    d.contact("CI5", "RI5", "2026-03-01")
    d.referral("RI6", "I5", "T8", "2026-01-01")  # only a DNA
    d.contact("CI6", "RI6", "2026-03-01", attend="3")
    raw = _raw(tmp_path, d)
    assert raw["MHS116"]["value"] == 3


# ---------------------------------------------------------------------------------------------
# Inpatient length of stay - MHS156 family, MHS100, MHS103
# ---------------------------------------------------------------------------------------------


def _los_data(n_adult: int) -> Data:
    d = Data()
    d.team("TW", "A10")
    d.person("W0", "1980-01-01")
    d.person("OLD", "1950-01-01")
    d.person("KID", "2009-06-01")
    stays = [10, 20, 30, 40, 50, 61][:n_adult]
    for k, los in enumerate(stays):
        d.referral(f"RW{k}", "W0", "TW", "2026-01-01")
        start = date(2026, 3, 1)
        end = date.fromordinal(start.toordinal() + los)
        # the bed type is the last ward stay's: PICU first, adult acute at discharge
        d.spell(f"S{k}", f"RW{k}", start.isoformat(), end.isoformat(), ["202", "200"])
    return d


def test_length_of_stay_measures(tmp_path):
    d = _los_data(6)
    d.referral("RO", "OLD", "TW", "2026-01-01")
    d.spell("SO", "RO", "2026-02-01", "2026-05-07", ["201"])  # 95 days, 65+
    d.referral("RK", "KID", "TW", "2026-01-01")
    d.spell("SK", "RK", "2026-04-01", "2026-04-11", ["200"])  # under 18: not counted
    d.referral("RX", "W0", "TW", "2026-01-01")
    d.spell("SX", "RX", "2026-04-01", "2026-04-11", ["200", "203"])  # ends on a bed type outside
    d.referral("RY", "W0", "TW", "2025-10-01")
    d.spell("SY", "RY", "2025-10-01", "2025-11-30", ["200"])  # discharged before the window
    raw = _raw(tmp_path, d, months=months_back(PERIOD, 14))
    assert raw["MHS156"]["value"] == 7
    assert raw["MHS156a"]["value"] == 10 + 20 + 30 + 40 + 50 + 61 + 95
    assert raw["MHS156b"]["value"] == pytest.approx(306 / 7)
    assert raw["MHS100"]["value"] == 1  # adult acute, 18-64, 61 days
    assert raw["MHS103"]["value"] == 1  # older adult acute, 65+, 95 days
    mean = ltp_metrics.METRIC_BY_ID["MHS156b"]
    assert ltp_metrics.publishable(mean, raw["MHS156b"]) == 43.7
    assert ltp_metrics.publishable(ltp_metrics.METRIC_BY_ID["MHS156"], raw["MHS156"]) == 5  # 7 -> 5


def test_mean_length_of_stay_withheld_under_five_discharges(tmp_path):
    raw = _raw(tmp_path, _los_data(4))
    assert raw["MHS156"]["value"] == 4
    assert ltp_metrics.publishable(ltp_metrics.METRIC_BY_ID["MHS156b"], raw["MHS156b"]) is None
    assert ltp_metrics.publishable(ltp_metrics.METRIC_BY_ID["MHS156"], raw["MHS156"]) is None


# ---------------------------------------------------------------------------------------------
# Disclosure control, trajectories, missing months
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "published"),
    [(0, None), (4, None), (5, 5), (7, 5), (8, 10), (12, 10), (13, 15), (254, 255), (1235, 1235)],
)
def test_counts_are_suppressed_under_5_and_rounded_to_5(n, published):
    assert disclosure_control(n) == published
    if published is not None:
        assert published % 5 == 0 and round_to_5(n) == published


def test_controlled_rate_is_withheld_with_a_suppressed_part():
    assert controlled_rate(3, 100) is None
    assert controlled_rate(12, 48) == round(100 * 10 / 50, 1)


def test_trajectory_carried_forward_scaled_and_compared():
    trajectories = ltp_metrics.load_trajectories(SEEDS)
    row = ltp_metrics.trajectory_for(trajectories, "MHS95", "2026/27")
    assert row["financial_year"] == "2023/24" and float(row["trajectory_value"]) == 6265
    assert ltp_metrics.trajectory_for(trajectories, "MHS95", "2022/23")["trajectory_value"] == "5459"
    assert ltp_metrics.trajectory_for(trajectories, "MHS95", "2020/21") is None
    assert ltp_metrics.scaled_trajectory(row, 0.1) == 626.5
    los = ltp_metrics.trajectory_for(trajectories, "MHS156b", "2026/27")
    assert ltp_metrics.scaled_trajectory(los, 0.1) == 32.0  # a length of stay is not scaled
    assert ltp_metrics.compare(31.9, 32.0, "at_most") == "met"
    assert ltp_metrics.compare(32.8, 32.0, "at_most") == "not_met"
    assert ltp_metrics.compare(630, 626.5, "at_least") == "met"
    assert ltp_metrics.compare(None, 626.5, "at_least") == "suppressed"


def test_missing_months_are_reported_not_invented(tmp_path):
    d = Data()
    d.team("T1", "A06", "02")
    for k, month in enumerate(months_back(PERIOD, 12)):
        pid = f"P{k}"
        d.person(pid, "2012-01-01")
        d.referral(f"R{k}", pid, "T1", f"{month}-01")
        d.contact(f"C{k}", f"R{k}", f"{month}-10")
    published = [m for m in months_back(PERIOD, 12) if m != "2026-06"]
    d.publish(tmp_path, published)
    history = find_published(tmp_path, PERIOD, 12)
    assert history.missing == ["2026-06"]
    con = open_history(history)
    trajectories = [
        {
            "metric_id": "MHS95",
            "financial_year": "2026/27",
            "trajectory_value": "1000",
            "direction": "at_least",
            "unit": "people",
            "local_measure": "CYP",
            "mhsds_measurable": "true",
            "source": "test",
        }
    ]
    rows, series = ltp_metrics.ltp_metrics(con, history, CODES, trajectories, trajectory_scale=0.01)
    con.close()
    mhs95 = next(r for r in rows if r["metric_id"] == "MHS95")
    assert mhs95["value"] == 10.0  # 11 people published (the June person is not invented) -> 10
    assert mhs95["months_available"] == 11 and not mhs95["window_complete"]
    assert mhs95["missing_months"] == "2026-06" and "2026-06" in mhs95["caveat"]
    assert mhs95["trajectory"] == 10.0 and mhs95["status"] == "met" and mhs95["pct_of_trajectory"] == 100.0
    points = [s for s in series if s["metric_id"] == "MHS95"]
    assert [p["period"] for p in points] == published  # one point per published month
    assert points[0]["value"] is None  # 1 person: suppressed
    assert all(p["value"] is None or p["value"] % 5 == 0 for p in points)


# ---------------------------------------------------------------------------------------------
# Activity set beside spend
# ---------------------------------------------------------------------------------------------


def test_activity_by_mhis_category_and_unit_costs(tmp_path):
    d = Data()
    d.team("T001", "A06", "02")  # CAMHS -> CYP_MH (exact age-group row)
    d.team("T009", "A06", "01")  # CMHT -> ADULT_COMMUNITY ('*' row)
    for k in range(12):
        d.person(f"C{k}", "2012-01-01")
        d.referral(f"RC{k}", f"C{k}", "T001", "2026-02-01")
        d.contact(f"CC{k}", f"RC{k}", "2026-03-01")
        d.contact(f"CCd{k}", f"RC{k}", "2026-04-01", attend="3")  # DNAs are not contacts
    for k in range(3):
        d.person(f"A{k}", "1980-01-01")
        d.referral(f"RA{k}", f"A{k}", "T009", "2025-06-01")  # received before the window
        d.contact(f"CA{k}", f"RA{k}", "2026-03-01", mech="02")
    d.publish(tmp_path, months_back(PERIOD, 12))
    history = find_published(tmp_path, PERIOD, 12)
    con = open_history(history)
    spend = [
        {
            "month_start": date(2026, m, 1),
            "cost_centre": cc,
            "service_line": line,
            "team_local_id": team,
            "mhis_category": cat,
            "amount_gbp": Decimal(amount),
        }
        for m in range(1, 13)
        for cc, line, team, cat, amount in (
            ("CC1001", "CAMHS", "T001", "CYP_MH", "1000.00"),
            ("CC1009", "ADULT", "T009", "ADULT_COMMUNITY", "500.00"),
        )
    ]
    team_map = read_seed(SEEDS / "ref_mhis_team_type_map.csv")
    categories = read_seed(SEEDS / "ref_mhis_category.csv")
    assert activity.team_categories(con, team_map) == {"T001": "CYP_MH", "T009": "ADULT_COMMUNITY"}
    rows, teams = activity.activity_by_category(con, history, spend, team_map, categories)
    con.close()
    by = defaultdict(dict)
    for r in rows:
        by[r["mhis_category"]] = r
    cyp = by["CYP_MH"]
    # spend Dec 2025 - Nov 2026 = 11 months in the fixture (January to November 2026)
    assert cyp["spend_gbp"] == Decimal("11000.00")
    assert cyp["contacts"] == 10 and cyp["people_in_contact"] == 10 and cyp["referrals"] == 10  # 12 -> 10
    assert cyp["spend_per_contact_gbp"] == Decimal("1100.00")  # spend / published count
    adult = by["ADULT_COMMUNITY"]
    assert adult["contacts"] is None and adult["spend_per_contact_gbp"] is None  # 3: suppressed
    assert adult["referrals"] is None  # received before the window: 0, suppressed
    assert by["TOTAL"]["people_in_contact"] == 15
    team_rows = {t["team_local_id"]: t for t in teams}
    assert (
        team_rows["T001"]["cost_centre"] == "CC1001"
        and team_rows["T001"]["activity_mhis_category"] == "CYP_MH"
    )
