"""The national LTP measures on a tiny hand-built trust whose answers are worked out by hand.

One set of published months (January 2025 to November 2026, June 2025 not published) is loaded into
a scratch DuckDB warehouse and the national derived fields are built by dbt once for the module
(``dbt build --select +tag:derived``). Every case below has its own people, referrals and teams, so
each measure's expected value is the sum of the cases written for it. The reporting period is
November 2026: the 12-month window is December 2025 - November 2026 (UniqMonthIDs 1509-1520) and
the quarter September - November 2026.

How a month is published here mirrors the extract scope: a referral (and its person, and its
MHS102 rows) is in every month it is open; a contact or an indirect activity in the month it is
dated; a spell and its ward stays in every month they overlap. End dates after a month's end are
not yet known in that month's submission (null), as in the extract.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from conftest import scratch_settings

from mhsds_pipeline.finance import ltp_metrics, waits
from mhsds_pipeline.finance.fixtures import write_published_month
from mhsds_pipeline.finance.published import find_published, load_published, months_back
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.transform import run_dbt

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "dbt_project" / "seeds" / "finance"
CODES = ltp_metrics.load_metric_codes(SEEDS)
PERIOD = "2026-11"
NOT_PUBLISHED = "2025-06"
MONTHS = [m for m in months_back(PERIOD, 23) if m != NOT_PUBLISHED]  # 2025-01 .. 2026-11

ENGLAND = "WR1 1AB"  # Worcester
WALES = "LD8 2AB"  # Powys


class Trust:
    def __init__(self) -> None:
        self.teams = [
            ("T_CAMHS", "C01"),  # CYP community: no MHS108 team type
            ("T_PERI", "C02"),  # specialist perinatal
            ("T_CMHT", "A05"),  # core community (MHS108)
            ("T_CORE2", "C10"),  # core community (MHS108)
            ("T_CRISIS", "A02"),  # crisis: not a core community team
            ("T_IPS", "D05"),  # IPS
            ("T_WARD", "B01"),
            ("T_EIP", "A14"),  # early intervention: MHS108, not the 4-week waits
        ]
        self.people: dict[str, dict] = {}
        self.referrals: list[dict] = []
        self.other_teams: list[dict] = []
        self.contacts: list[dict] = []
        self.indirect: list[dict] = []
        self.activities: list[dict] = []
        self.assessments: list[dict] = []
        self.spells: list[dict] = []
        self.stays: list[dict] = []

    def person(self, pid, born, postcode=ENGLAND, gid="2", gender="2", same=None):
        self.people[pid] = {
            "LocalPatientID": pid,
            "NHSNumber": None,
            "PersonBirthDate": born,
            "Postcode": postcode,
            "GenderIDCode": gid,
            "GenderSameAtBirth": same,
            "Gender": gender,
        }

    def referral(self, rid, pid, team, received, discharged=None, other_team=None):
        self.referrals.append(
            {
                "ServiceRequestID": rid,
                "LocalPatientID": pid,
                "CareProfTeamLocalID": team,
                "ReferralRequestReceivedDate": received,
                "ServDischDate": discharged,
            }
        )
        if other_team:
            self.other_teams.append({"ServiceRequestID": rid, "OtherCareProfTeamLocalID": other_team})

    def contact(self, cid, rid, day, attend="5", mech="01", procedure=None, procedures=()):
        self.contacts.append(
            {
                "CareContactID": cid,
                "ServiceRequestID": rid,
                "CareContDate": day,
                "CareContTime": "10:30:00",
                "OtherCareProfTeamLocalID": None,
                "AttendStatus": attend,
                "ConsMechanismMH": mech,
            }
        )
        for k, code in enumerate(([procedure] if procedure else []) + list(procedures)):
            self.activities.append({"CareActID": f"A{cid}-{k}", "CareContactID": cid, "Procedure": code})

    def assessment(self, rid, when, tool="720433000"):  # PHQ-9
        self.assessments.append(
            {"ServiceRequestID": rid, "CodedAssToolType": tool, "AssToolCompTimestamp": f"{when}T11:00:00"}
        )

    def indirect_activity(self, rid, day, procedure=None):
        self.indirect.append(
            {
                "ServiceRequestID": rid,
                "OtherCareProfTeamLocalID": None,
                "IndirectActDate": day,
                "IndirectActTime": "11:15:00",
                "IndActProcedure": procedure,
            }
        )

    def spell(self, sid, rid, start, end, bed_class):
        self.spells.append(
            {
                "HospProvSpellID": sid,
                "ServiceRequestID": rid,
                "StartDateHospProvSpell": start,
                "DischDateHospProvSpell": end,
            }
        )
        self.stays.append(
            {
                "WardStayID": f"W{sid}",
                "HospProvSpellID": sid,
                "StartDateWardStay": start,
                "EndDateWardStay": end,
                "MHAdmittedPatientClass": bed_class,
            }
        )

    def publish(self, output: Path, months: list[str]) -> None:
        for month in months:
            rp = ReportingPeriod.parse(month)
            first, last = rp.start.isoformat(), rp.end.isoformat()

            def open_in(start, end, first=first, last=last):
                return start <= last and (end or "9999") >= first

            def as_at(row, column, last=last):
                return {**row, column: row[column] if (row[column] or "9999") <= last else None}

            refs = [
                as_at(r, "ServDischDate")
                for r in self.referrals
                if open_in(r["ReferralRequestReceivedDate"], r["ServDischDate"])
            ]
            ids = {r["ServiceRequestID"] for r in refs}
            contacts = [c for c in self.contacts if c["CareContDate"][:7] == month]
            cids = {c["CareContactID"] for c in contacts}
            spells = [
                as_at(s, "DischDateHospProvSpell")
                for s in self.spells
                if open_in(s["StartDateHospProvSpell"], s["DischDateHospProvSpell"])
            ]
            write_published_month(
                output,
                month,
                {
                    "MHS902ServiceTeamDetails": [
                        {"CareProfTeamLocalID": t, "ServTeamTypeMH": ty, "ServTeamIntAgeGroup": "01"}
                        for t, ty in self.teams
                    ],
                    "MHS001MPI": [self.people[p] for p in sorted({r["LocalPatientID"] for r in refs})],
                    "MHS101Referral": refs,
                    "MHS102OtherServiceType": [o for o in self.other_teams if o["ServiceRequestID"] in ids],
                    "MHS201CareContact": contacts,
                    "MHS202CareActivity": [a for a in self.activities if a["CareContactID"] in cids],
                    "MHS204IndirectActivity": [i for i in self.indirect if i["IndirectActDate"][:7] == month],
                    "MHS606CodedScoreAssessmentRefer": [
                        a for a in self.assessments if a["AssToolCompTimestamp"][:7] == month
                    ],
                    "MHS501HospProvSpell": spells,
                    "MHS502WardStay": [
                        as_at(w, "EndDateWardStay")
                        for w in self.stays
                        if open_in(w["StartDateWardStay"], w["EndDateWardStay"])
                    ],
                },
            )


def build_trust() -> Trust:
    t = Trust()
    # --- MHS95: CYP ---------------------------------------------------------------------------
    t.person("C1", "2012-05-01")  # counts: attended face-to-face contact
    t.referral("RC1", "C1", "T_CAMHS", "2026-01-10")
    t.contact("CC1", "RC1", "2026-02-05")
    t.person("C2", "2013-01-01")  # counts: indirect activity only (MHS204)
    t.referral("RC2", "C2", "T_CAMHS", "2026-03-01")
    t.indirect_activity("RC2", "2026-04-02")
    t.person("C3", "2012-01-01", postcode=WALES)  # not an England resident
    t.referral("RC3", "C3", "T_CAMHS", "2026-01-10")
    t.contact("CC3", "RC3", "2026-02-05")
    t.person("C4", "2012-01-01")  # did not attend
    t.referral("RC4", "C4", "T_CAMHS", "2026-01-10")
    t.contact("CC4", "RC4", "2026-02-05", attend="3")
    t.person("C5", "2008-03-15")  # 17 at referral, 18 at the contact
    t.referral("RC5", "C5", "T_CAMHS", "2026-01-10")
    t.contact("CC5", "RC5", "2026-04-01")
    t.person("C6", "2012-01-01")  # contact in the month before the window
    t.referral("RC6", "C6", "T_CAMHS", "2025-11-01", discharged="2025-11-30")
    t.contact("CC6", "RC6", "2025-11-20")
    # --- MHS91: perinatal ------------------------------------------------------------------------
    t.person("W1", "1995-01-01")  # counts: perinatal referral, face-to-face
    t.referral("RW1", "W1", "T_PERI", "2026-02-01")
    t.contact("CW1", "RW1", "2026-03-03")
    t.person("W2", "1996-01-01")  # counts: perinatal team only on MHS102, video contact
    t.referral("RW2", "W2", "T_CMHT", "2026-02-01", other_team="T_PERI")
    t.contact("CW2", "RW2", "2026-03-03", mech="11")
    t.person("W3", "1997-01-01")  # telephone: not a perinatal access contact
    t.referral("RW3", "W3", "T_PERI", "2026-02-01")
    t.contact("CW3", "RW3", "2026-03-03", mech="02")
    t.person("W4", "1994-01-01", gid="1", gender="1", same="N")  # counts: gender identity rule
    t.referral("RW4", "W4", "T_PERI", "2026-02-01")
    t.contact("CW4", "RW4", "2026-03-03")
    # --- MHS108: adults, 2+ contacts with core community teams ---------------------------------
    t.person("A1", "1980-01-01", gid="1", gender="1")  # counts: two contacts in the window
    t.referral("RA1", "A1", "T_CMHT", "2026-02-01")
    t.contact("CA1a", "RA1", "2026-03-02")
    t.contact("CA1b", "RA1", "2026-05-04", mech="02")
    t.person("A2", "1981-01-01", gid="1", gender="1")  # counts: core team only on MHS102
    t.referral("RA2", "A2", "T_CRISIS", "2026-02-01", other_team="T_CORE2")
    t.contact("CA2a", "RA2", "2026-03-02")
    t.contact("CA2b", "RA2", "2026-04-02")
    t.person("A3", "1982-01-01", gid="1", gender="1")  # 1st contact before the window
    t.referral("RA3", "A3", "T_CMHT", "2025-10-01")
    t.contact("CA3a", "RA3", "2025-11-10")
    t.contact("CA3b", "RA3", "2026-01-15")
    t.person("A4", "1983-01-01", gid="1", gender="1")  # hospital spell on the referral this FY
    t.referral("RA4", "A4", "T_CMHT", "2026-05-01")
    t.spell("SA4", "RA4", "2026-06-01", "2026-06-20", "210")
    t.contact("CA4a", "RA4", "2026-07-01")
    t.contact("CA4b", "RA4", "2026-08-03")
    t.person("A5", "1984-01-01", gid="1", gender="1")  # one of two contacts is a DNA
    t.referral("RA5", "A5", "T_CMHT", "2026-02-01")
    t.contact("CA5a", "RA5", "2026-03-02")
    t.contact("CA5b", "RA5", "2026-04-02", attend="3")
    t.person("A6", "1985-01-01", gid="1", gender="1")  # one contact, two core team rows that month
    t.referral("RA6", "A6", "T_CMHT", "2026-02-01", other_team="T_CORE2")
    t.contact("CA6", "RA6", "2026-03-02")
    # --- MHS116: IPS (referrals) -----------------------------------------------------------------
    t.person("I1", "1990-01-01", gid="1", gender="1")  # counts: IPS team
    t.referral("RI1", "I1", "T_IPS", "2026-01-05")
    t.contact("CI1", "RI1", "2026-02-02")
    t.person("I2", "1990-01-01", gid="1", gender="1")  # counts: IPS procedure on the contact
    t.referral("RI2", "I2", "T_CRISIS", "2026-01-05")
    t.contact("CI2", "RI2", "2026-02-02", procedure="1082621000000104")
    t.person("I3", "1990-01-01", gid="1", gender="1")  # the excluded qualifier
    t.referral("RI3", "I3", "T_CRISIS", "2026-01-05")
    t.contact("CI3", "RI3", "2026-02-02", procedure="772822000:408730004=443390004")
    t.person("I4", "1990-01-01", gid="1", gender="1", postcode=WALES)  # not an England resident
    t.referral("RI4", "I4", "T_IPS", "2026-01-05")
    t.contact("CI4", "RI4", "2026-02-02")
    t.person("I5", "1990-01-01", gid="1", gender="1")  # received before 2016
    t.referral("RI5", "I5", "T_IPS", "2015-12-01")
    t.contact("CI5", "RI5", "2026-02-02")
    # --- Length of stay (quarter Sep-Nov 2026) ---------------------------------------------------
    t.person("S1", "1986-01-01")  # adult acute, crosses into the quarter: 2026-08-01..09-10 = 40 days
    t.referral("RS1", "S1", "T_WARD", "2026-07-30", discharged="2026-09-10")
    t.spell("SS1", "RS1", "2026-08-01", "2026-09-10", "200")
    t.person("S2", "1981-06-01")  # adult acute, 18-64, 2026-06-01..09-30 = 121 days (MHS100)
    t.referral("RS2", "S2", "T_WARD", "2026-05-30", discharged="2026-09-30")
    t.spell("SS2", "RS2", "2026-06-01", "2026-09-30", "200")
    t.person("S3", "1955-01-01")  # older adult acute, 65+, 2026-06-15..10-20 = 127 days (MHS103)
    t.referral("RS3", "S3", "T_WARD", "2026-06-10", discharged="2026-10-20")
    t.spell("SS3", "RS3", "2026-06-15", "2026-10-20", "201")
    t.person("S4", "1980-01-01")  # discharged before the quarter: 2026-08-05..08-31 = 26 days
    t.referral("RS4", "S4", "T_WARD", "2026-08-01", discharged="2026-08-31")
    t.spell("SS4", "RS4", "2026-08-05", "2026-08-31", "200")
    t.person("S5", "1980-01-01")  # not an acute or PICU bed
    t.referral("RS5", "S5", "T_WARD", "2026-09-01", discharged="2026-10-05")
    t.spell("SS5", "RS5", "2026-09-02", "2026-10-05", "210")
    t.person("S6", "2009-03-01")  # PICU, 17 at the end of the discharge month
    t.referral("RS6", "S6", "T_WARD", "2026-09-01", discharged="2026-10-05")
    t.spell("SS6", "RS6", "2026-09-02", "2026-10-05", "202")
    # --- 4-week waits (quarter Sep-Nov 2026; ASSESS is the test's assessment refset member) ------
    t.person("K1", "1970-01-01", gid="1", gender="1")  # clock stop 20 Sep, 19 days: within 4 weeks
    t.referral("RK1", "K1", "T_CMHT", "2026-09-01")
    t.contact("CK1a", "RK1", "2026-09-10", procedure=ASSESS)
    t.assessment("RK1", "2026-09-15")
    t.contact("CK1b", "RK1", "2026-09-20", procedure=CAT)
    t.person("K2", "1971-01-01", gid="1", gender="1")  # clock stop 25 Sep, 55 days
    t.referral("RK2", "K2", "T_CMHT", "2026-08-01")
    t.contact("CK2a", "RK2", "2026-08-05", procedure=ASSESS)
    t.assessment("RK2", "2026-08-06")
    t.contact("CK2b", "RK2", "2026-09-25", procedure=CAT)
    t.person("K3", "1972-01-01", gid="1", gender="1")  # one contact, no outcome: still waiting
    t.referral("RK3", "K3", "T_CMHT", "2026-10-01")
    t.contact("CK3", "RK3", "2026-10-05")
    t.person("K4", "1973-01-01", gid="1", gender="1")  # two referrals 4 days apart: one spell from 1 July
    t.referral("RK4a", "K4", "T_CMHT", "2026-07-01", discharged="2026-08-20")
    t.referral("RK4b", "K4", "T_CORE2", "2026-08-24")
    t.contact("CK4", "RK4b", "2026-09-01", procedures=(ASSESS, CAT))
    t.assessment("RK4b", "2026-09-02")
    t.person("K5", "1974-01-01", gid="1", gender="1")  # a hospital spell on the referral: out of scope
    t.referral("RK5", "K5", "T_CMHT", "2026-09-01")
    t.contact("CK5a", "RK5", "2026-09-05", procedures=(ASSESS, CAT))
    t.assessment("RK5", "2026-09-06")
    t.contact("CK5b", "RK5", "2026-09-12")
    t.spell("SK5", "RK5", "2026-10-01", "2026-10-05", "210")
    t.person("K6", "1975-01-01", gid="1", gender="1")  # early intervention team: not a CMH wait
    t.referral("RK6", "K6", "T_EIP", "2026-09-01")
    t.contact("CK6", "RK6", "2026-09-05", procedures=(ASSESS, CAT))
    t.assessment("RK6", "2026-09-06")
    t.person("K7", "1976-01-01", gid="1", gender="1")  # intervention recorded as indirect activity
    t.referral("RK7", "K7", "T_CMHT", "2026-10-01")
    t.contact("CK7", "RK7", "2026-10-02", procedure=ASSESS)
    t.assessment("RK7", "2026-10-03")
    t.indirect_activity("RK7", "2026-10-08", procedure=CAT)
    return t


ASSESS = "TESTASSESS01"
CAT = "390773006"  # cognitive analytic therapy: MHSDS psychological therapies refset


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    """The trust published, loaded into a scratch warehouse and its derived fields built by dbt."""
    root = tmp_path_factory.mktemp("ltp")
    settings = scratch_settings(root)
    build_trust().publish(settings.output_dir, MONTHS)
    history = find_published(settings.output_dir, PERIOD, 23)
    assert history.missing == [NOT_PUBLISHED]
    load_published(settings, history)
    ok, nodes = run_dbt(
        settings, ["build", "--select", "+tag:derived"], {"finance_enabled": True}, root / "dbt"
    )
    assert ok, [(n.unique_id, n.message) for n in nodes if n.status in ("error", "fail")]
    con = ltp_metrics.open_derived(settings)
    yield con, history
    con.close()


@pytest.fixture(scope="module")
def raw(derived):
    con, _ = derived
    return ltp_metrics.raw_values(con, PERIOD, CODES)


def test_derived_fields_as_the_national_warehouse_builds_them(derived):
    """One referral record per open month; the same Person_ID in every month; ages at referral and
    at the period end; residence from the postcode lookup (Welsh border postcode -> Powys)."""
    con, _ = derived
    rows = con.execute(
        "SELECT UniqMonthID, AgeServReferRecDate, AgeRepPeriodEnd, LADistrictAuth, Person_ID "
        "FROM der_referral_month WHERE ServiceRequestID = 'RC5' ORDER BY UniqMonthID"
    ).fetchall()
    assert [r[0] for r in rows] == list(range(1510, 1521))  # 2026-01 .. 2026-11
    assert {r[1] for r in rows} == {17}  # 17 on 2026-01-10
    assert rows[1][2] == 17 and rows[2][2] == 18  # Feb 2026: 17; 31 March 2026: 18
    assert {r[3] for r in rows} == {"E07000237"} and len({r[4] for r in rows}) == 1
    wales = con.execute(
        "SELECT DISTINCT LADistrictAuth FROM der_referral_month WHERE ServiceRequestID = 'RC3'"
    ).fetchall()
    assert wales == [("W06000023",)]
    teams = con.execute(
        "SELECT Der_TeamSource, ServTeamTypeRefToMH FROM der_service_team_type "
        "WHERE UniqServReqID LIKE '%RW2' AND UniqMonthID = 1512 ORDER BY 1"
    ).fetchall()
    assert teams == [("MHS101", "A05"), ("MHS102", "C02")]
    kinds = dict(
        con.execute(
            "SELECT Der_ActivityType, count(*) FROM der_activity WHERE UniqServReqID LIKE '%RC2' GROUP BY 1"
        ).fetchall()
    )
    assert kinds == {"INDIRECT": 1}


def test_mhs95_counts_indirect_activity_and_england_residents(raw):
    """C1 (attended contact) and C2 (indirect activity only) count: 2. Not C3 (Powys), C4 (DNA),
    C5 (18 at the contact), C6 (contact in November 2025, before the window)."""
    assert raw["MHS95"] == {"value": 2, "indirect_only": 1}


def test_mhs91_team_on_mhs102_counts_and_telephone_does_not(raw):
    """W1 (perinatal referral, face to face), W2 (perinatal team only on MHS102, video), W4 (gender
    identity male, not the same as at birth) count: 3. W3's only contact is by telephone."""
    assert raw["MHS91"]["value"] == 3


def test_mhs108_second_contact_must_fall_in_the_window(raw):
    """A1 (two contacts), A2 (core team only on MHS102), A6, and K1 and K2 (two CMHT contacts each,
    in September) count: 5. A3's first contact was in
    November 2025, so only one is in the window; A4 had a hospital spell on the referral in
    2026/27; A5's second contact is a DNA. A6 has one contact but two core team rows that month
    (MHS101 A05 + MHS102 C10): NHS England's join numbers that contact 1 and 2, so A6 counts
    nationally and not when each contact is counted once (4). K5's referral has a hospital spell
    this financial year; K6 has one contact."""
    assert raw["MHS108"] == {"value": 5, "distinct_value": 4}


def test_mhs116_counts_referrals_by_team_or_procedure(raw):
    """RI1 (IPS team) and RI2 (IPS procedure) count: 2. Not RI3 (qualifier 443390004), RI4
    (Powys), RI5 (received in 2015)."""
    assert raw["MHS116"]["value"] == 2


def test_length_of_stay_over_the_quarter_and_over_12_months(raw):
    """Quarter Sep-Nov 2026: S1 40 days (admitted in August: the stay crosses the quarter's
    start), S2 121, S3 127 -> 3 discharges, 288 bed days, mean 96. S4 (discharged 31 August) is
    outside the quarter; S5 is not an acute bed; S6 is 17. MHS100: S2 (adult acute, 45, 121 days);
    MHS103: S3 (older adult acute, 71, 127 days). Over 12 months S4 adds 26 days: 4 discharges,
    314 bed days, mean 78.5."""
    assert raw["MHS156"]["value"] == 3 and raw["MHS156a"]["value"] == 288
    assert raw["MHS156b"]["value"] == pytest.approx(96.0)
    assert raw["MHS100"]["value"] == 1 and raw["MHS103"]["value"] == 1
    assert raw["MHS156_12M"]["value"] == 4 and raw["MHS156a_12M"]["value"] == 314
    assert raw["MHS156b_12M"]["value"] == pytest.approx(78.5)


def test_published_as_nhs_england_publishes_at_provider_level(raw):
    """3 discharges are suppressed, but the mean is published because its numerator (288 bed days)
    is not; 78.5 rounds half up to 79 (Spark's ROUND), 288 bed days to 290."""
    by_id = ltp_metrics.METRIC_BY_ID
    assert ltp_metrics.publishable(by_id["MHS156"], raw) is None
    assert ltp_metrics.publishable(by_id["MHS156a"], raw) == 290
    assert ltp_metrics.publishable(by_id["MHS156b"], raw) == 96
    assert ltp_metrics.publishable(by_id["MHS156b_12M"], raw) == 79


def test_statuses_incomplete_when_a_window_month_is_unpublished(derived):
    """June 2025 is not published: every 12-month window ending May 2026 or earlier lacks it and is
    ``incomplete`` (never ``not_met``); the period's own windows are complete."""
    con, history = derived
    trajectories = [
        {
            "metric_id": "MHS95",
            "financial_year": "2025/26",
            "trajectory_value": "100",
            "direction": "at_least",
            "unit": "people",
            "local_measure": "CYP",
            "mhsds_measurable": "true",
            "source": "test",
        }
    ]
    rows, series = ltp_metrics.ltp_metrics(con, history, CODES, trajectories, trajectory_scale=1.0)
    mhs95 = next(r for r in rows if r["metric_id"] == "MHS95")
    assert mhs95["window_complete"] and mhs95["status"] == "suppressed"  # 2 people < 5
    assert mhs95["nhs_england_source"].startswith("04_cyp_perinatal/cyp_perinatal_prep.py")
    points = {s["period"]: s for s in series if s["metric_id"] == "MHS95"}
    assert points["2026-05"]["status"] == "incomplete" and points["2026-05"]["months_available"] == 11
    assert points["2026-06"]["status"] == "suppressed" and points["2026-06"]["window_complete"]
    assert set(points) == set(months_back(PERIOD, 12))
    assert date(2025, 12, 1) == next(r for r in rows if r["metric_id"] == "MHS108")["window_start"]
    los = next(r for r in rows if r["metric_id"] == "MHS156b")
    assert los["window_months"] == 3 and los["window_start"] == date(2026, 9, 1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The reference seeds with the test's member of the assessment procedures refset added (the
    repository ships none: its members are loaded from the SNOMED CT UK Edition)."""
    ref = tmp_path_factory.mktemp("reference")
    seeds = REPO / "dbt_project" / "seeds" / "reference"
    shutil.copy(seeds / "ref_assessment_tools.csv", ref / "ref_assessment_tools.csv")
    text = (seeds / "ref_snomed_intervention_valueset.csv").read_text()
    (ref / "ref_snomed_intervention_valueset.csv").write_text(
        text.rstrip("\n") + f"\n{ASSESS},Test assessment,mhsds_assessments,{waits.ASSESSMENT_REFSET},test\n"
    )
    return ref


def test_four_week_waits_as_nhs_england_computes_them(derived, reference):
    """Spells in scope overlapping the quarter: W2, A1, A2, A3, A5, A6 (CMHT referrals earlier in the
    year), K1-K4, K7. K5 (hospital spell) and K6 (EIP) are out of scope.

    * Clock stops in the quarter (MRS01): K1 on 20 Sep (its last component: the CAT intervention),
      K2 on 25 Sep, K4 on 2 Sep (baseline PHQ-9 the day after its only contact), K7 on 8 Oct (its
      intervention recorded on an indirect activity, MHS204) = 4. The A and W people have no
      baseline outcome, so no clock stop.
    * Within 28 days of the spell start (MRS01a): K1 (19 days), K7 (7 days) = 2. K2 took 55 days.
      K4's spell starts on 1 July because its referrals 4 days apart merge: 63 days (9 if they
      did not).
    * MRS01b = 2/4 = 50%, withheld because its numerator is under 5.
    * Waiting for a 2nd contact at the period end (MRS03): W2, A5 (the 2nd was a DNA), K3, K4, K7 = 5.
      A6 has one contact, but NHS England's join gives it a 2nd (two core team rows that month).
    * 2nd contact in the quarter (MRS15): K1 (20 Sep), K2 (25 Sep) = 2.
    """
    con, _ = derived
    raw = ltp_metrics.raw_values(con, PERIOD, CODES, reference)
    assert raw["MRS01"]["value"] == 4 and raw["MRS01a"]["value"] == 2
    assert raw["MRS01b"]["value"] == pytest.approx(50.0)
    assert ltp_metrics.publishable(ltp_metrics.METRIC_BY_ID["MRS01b"], raw) is None
    assert raw["MRS03"]["value"] == 5 and raw["MRS15"]["value"] == 2
    assert raw["MRS01"]["spells"] == 11


def test_no_clock_stop_until_the_assessment_refset_is_loaded(derived):
    """With the repository's seeds (no member of refset 1853441000000109), spells from April 2024
    never stop the clock, and the published row says why."""
    con, history = derived
    raw = ltp_metrics.raw_values(con, PERIOD, CODES, REPO / "dbt_project" / "seeds" / "reference")
    assert raw["MRS01"]["value"] == 0 and raw["MRS15"]["value"] == 2
    rows, _ = ltp_metrics.ltp_metrics(
        con, history, CODES, [], reference_dir=REPO / "dbt_project" / "seeds" / "reference"
    )
    mrs01 = next(r for r in rows if r["metric_id"] == "MRS01")
    assert "1853441000000109" in mrs01["caveat"] and mrs01["window_months"] == 3


def test_derived_fields_follow_a_republished_or_unloaded_month(tmp_path):
    """publish_mhis computes on the months published now: a month re-published after
    load_finance, or one an earlier period needs but the latest period's load did not reach, is
    reloaded and the derived fields rebuilt before any measure is computed."""
    from mhsds_pipeline.finance import ensure_derived

    settings = scratch_settings(tmp_path)
    t = Trust()
    t.person("C1", "2012-05-01")
    t.referral("RC1", "C1", "T_CAMHS", "2026-09-10")
    t.contact("CC1", "RC1", "2026-10-05")
    t.publish(settings.output_dir, ["2026-09", "2026-10"])
    assert ensure_derived(settings, find_published(settings.output_dir, "2026-10", 2)) == [
        "2026-09",
        "2026-10",
    ]
    assert ensure_derived(settings, find_published(settings.output_dir, "2026-10", 2)) == []  # as loaded

    t.contact("CC2", "RC1", "2026-10-20")  # October re-published with a second contact
    t.publish(settings.output_dir, ["2026-10"])
    t.publish(settings.output_dir, ["2026-08"])  # a month only an earlier window reaches
    con = ltp_metrics.open_derived(settings)
    assert con.execute("SELECT count(*) FROM der_activity").fetchone()[0] == 1
    con.close()
    assert ensure_derived(settings, find_published(settings.output_dir, "2026-10", 3)) == [
        "2026-08",
        "2026-10",
    ]
    con = ltp_metrics.open_derived(settings)
    assert con.execute("SELECT count(*) FROM der_activity").fetchone()[0] == 2
    con.close()
