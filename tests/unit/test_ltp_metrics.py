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
    # a window with an unpublished month is incomplete, whatever its value
    assert ltp_metrics.compare(10, 626.5, "at_least", ["2026-06"]) == "incomplete"
    assert ltp_metrics.compare(None, 626.5, "at_least", ["2026-06"]) == "incomplete"
    assert ltp_metrics.compare(10, None, None, ["2026-06"]) == "incomplete"
    assert ltp_metrics.compare(10, None, None) == "no_trajectory"


@pytest.mark.parametrize(("count", "published"), [(4, None), (7, 5)])
def test_measure_counts_of_4_and_7_under_disclosure_control(count, published):
    """NHS England's count_suppression (mhsds_functions.py 1344-1357): 4 -> '*', 7 -> 5."""
    raw = {"MHS95": {"value": count}}
    assert ltp_metrics.publishable(ltp_metrics.METRIC_BY_ID["MHS95"], raw) == published


@pytest.mark.parametrize(
    ("bed_days", "mean", "published"),
    [(4, 2.0, None), (5, 2.5, 3), (290, 78.5, 79), (290, 96.49, 96), (0, None, None)],
)
def test_mean_length_of_stay_suppressed_on_bed_days_and_rounded_half_up(bed_days, mean, published):
    """A mean is withheld when its numerator (bed days, MHS156a) is under 5, whatever the number of
    discharges, else published as a whole number rounded half up (Spark ROUND)."""
    raw = {"MHS156b": {"value": mean}, "MHS156a": {"value": bed_days}}
    assert ltp_metrics.publishable(ltp_metrics.METRIC_BY_ID["MHS156b"], raw) == published


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


def test_unit_costs_use_the_same_months_for_spend_and_activity(tmp_path):
    """Only November 2026 is published: the unit cost divides November's spend (1,000) by
    November's contacts (10), not 11 months of ledger spend by one month of activity."""
    d = Data()
    d.team("T001", "A06", "02")
    for k in range(10):
        d.person(f"C{k}", "2012-01-01")
        d.referral(f"RC{k}", f"C{k}", "T001", "2026-11-01")
        d.contact(f"CC{k}", f"RC{k}", "2026-11-02")
    d.publish(tmp_path, [PERIOD])
    history = find_published(tmp_path, PERIOD, 12)
    con = open_history(history)
    spend = [
        {
            "month_start": date(2026, m, 1),
            "cost_centre": "CC1001",
            "service_line": "CAMHS",
            "team_local_id": "T001",
            "mhis_category": "CYP_MH",
            "amount_gbp": Decimal("1000.00"),
        }
        for m in range(1, 12)
    ]
    rows, _ = activity.activity_by_category(
        con,
        history,
        spend,
        read_seed(SEEDS / "ref_mhis_team_type_map.csv"),
        read_seed(SEEDS / "ref_mhis_category.csv"),
    )
    con.close()
    cyp = next(r for r in rows if r["mhis_category"] == "CYP_MH")
    assert cyp["spend_gbp"] == Decimal("1000.00") and cyp["contacts"] == 10
    assert cyp["spend_per_contact_gbp"] == Decimal("100.00")
    assert "same 1 month(s)" in cyp["note"] and "2026-11..2026-11" in cyp["note"]
