"""NHS Long Term Plan access metrics from the published MHSDS, against local trajectories.

National definitions (mhis_ltp.md Part B; NHS England's ``menh_bbrb`` code), over a rolling 12
months ending with the reporting period. Their code lists (attendance, consultation mechanism,
team type, SNOMED CT, bed type) are the seed ``ref_ltp_metric_code``, applied as in force on the
window's last day. Common rules:

* a *direct attended contact*: AttendStatus 5 or 6 (DNAs and cancellations never count) with a
  direct ConsMechanismMH (face to face, telephone, talk type, video);
* ages are completed years from PersonBirthDate (MHS001) at the date in question, so a person is
  17 until the day before their 18th birthday;
* the team of a contact is the team delivering it (MHS201 OtherCareProfTeamLocalID, v6), else the
  referral's team (MHS101 CareProfTeamLocalID); its type is ServTeamTypeMH (MHS902). NHS England's
  v5-era code selects the referral's ServTeamTypeRefToMH; in v6 the team rides on the contact;
* a person is LocalPatientID (one provider), counted once per metric.

=========  ================================================================================
MHS95      CYP (0-17 at referral AND at contact) with >= 1 direct attended contact in the window
MHS91      women (GenderIDCode 2/3, or 1 with GenderSameAtBirth N, or identity missing and Gender 2)
           with >= 1 attended face-to-face/video contact with a specialist perinatal team (C02/F02)
MHS108     adults (18+ at referral) whose 2nd direct attended contact with a core community team
           (A05 A06 A08 A09 A12 A13 A16 C03 C10; + A14 EIP and D05 IPS from April 2023) on a
           referral falls in the window; referrals with an inpatient spell in the same financial
           year as that contact are removed. Contact order uses all published history read
           (``history_months``): referrals received before it may have had earlier contacts
           (reported as a caveat)
MHS116     referrals (not people) with >= 1 direct attended contact in the window with an IPS team
           (D05) or carrying an IPS SNOMED CT procedure; referral received on/after 2016-01-01
MHS156     discharges (18+) in the window from adult acute, older adult acute or PICU beds (class
           of the last ward stay); MHS156a bed days (length of stay summed); MHS156b mean LOS.
           National LOS measures are quarterly: here rolling 12 months, to match the trajectory
MHS100     adult acute discharges aged 18-64 with LOS >= 60 days
MHS103     older adult acute discharges aged 65+ with LOS >= 90 days
=========  ================================================================================

Disclosure control (privacy.disclosure_control): counts under 5 are suppressed, others rounded
to the nearest 5; the mean LOS is computed from unrounded values and withheld when its discharges
are under 5 (as the national code does for means). Trajectories compare the published values.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from mhsds_pipeline.finance.published import PublishedHistory, months_back
from mhsds_pipeline.finance.schema import financial_year, fy_start_year
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.privacy import disclosure_control

WINDOW_MONTHS = 12


@dataclass(frozen=True)
class Metric:
    metric_id: str
    name: str
    unit: str  # people | referrals | discharges | bed days | days
    kind: str  # count | mean


METRICS: tuple[Metric, ...] = (
    Metric("MHS95", "CYP aged 0-17 with at least one contact (12 months rolling)", "people", "count"),
    Metric(
        "MHS91",
        "Women accessing specialist community perinatal MH services (12 months rolling)",
        "people",
        "count",
    ),
    Metric(
        "MHS108",
        "Adults and older adults with 2+ contacts with community MH services (12 months rolling)",
        "people",
        "count",
    ),
    Metric(
        "MHS116",
        "Referrals accessing Individual Placement and Support (12 months rolling)",
        "referrals",
        "count",
    ),
    Metric(
        "MHS156",
        "Discharges from adult acute, older adult acute and PICU beds (12 months rolling)",
        "discharges",
        "count",
    ),
    Metric("MHS156a", "Bed days of those discharges (12 months rolling)", "bed days", "count"),
    Metric("MHS156b", "Mean length of stay of those discharges (12 months rolling)", "days", "mean"),
    Metric(
        "MHS100",
        "Adult acute discharges (18-64) with length of stay 60+ days (12 months rolling)",
        "discharges",
        "count",
    ),
    Metric(
        "MHS103",
        "Older adult acute discharges (65+) with length of stay 90+ days (12 months rolling)",
        "discharges",
        "count",
    ),
)
METRIC_BY_ID = {m.metric_id: m for m in METRICS}


def _codes(metric: str, code_list: str) -> str:
    return f"(SELECT code FROM ltp_code WHERE metric_id = '{metric}' AND code_list = '{code_list}')"


def _direct(metric: str, alias: str = "c") -> str:
    return (
        f"{alias}.AttendStatus IN {_codes(metric, 'attend_status')} "
        f"AND {alias}.ConsMechanismMH IN {_codes(metric, 'cons_mechanism')}"
    )


SQL: dict[str, str] = {
    "MHS95": f"""
        SELECT count(DISTINCT c.LocalPatientID) AS value
        FROM mhsds_contact c
        JOIN mhsds_referral r ON r.ServiceRequestID = c.ServiceRequestID
        JOIN mhsds_person p ON p.LocalPatientID = c.LocalPatientID
        WHERE c.CareContDate BETWEEN $start AND $end
          AND {_direct("MHS95")}
          AND age_on(p.PersonBirthDate, r.ReferralRequestReceivedDate) BETWEEN 0 AND 17
          AND age_on(p.PersonBirthDate, c.CareContDate) BETWEEN 0 AND 17
    """,
    "MHS91": f"""
        SELECT count(DISTINCT c.LocalPatientID) AS value
        FROM mhsds_contact c
        JOIN mhsds_person p ON p.LocalPatientID = c.LocalPatientID
        JOIN mhsds_team t ON t.CareProfTeamLocalID = c.team_id
        WHERE c.CareContDate BETWEEN $start AND $end
          AND {_direct("MHS91")}
          AND t.ServTeamTypeMH IN {_codes("MHS91", "serv_team_type")}
          AND (p.GenderIDCode IN ('2', '3')
               OR (p.GenderIDCode = '1' AND p.GenderSameAtBirth = 'N')
               OR (p.GenderIDCode IS NULL AND p.Gender = '2'))
    """,
    "MHS108": f"""
        WITH adult_referrals AS (
            SELECT r.ServiceRequestID, r.ReferralRequestReceivedDate
            FROM mhsds_referral r
            JOIN mhsds_person p ON p.LocalPatientID = r.LocalPatientID
            WHERE age_on(p.PersonBirthDate, r.ReferralRequestReceivedDate) >= 18
        ),
        contacts AS (
            SELECT c.ServiceRequestID, c.LocalPatientID, c.CareContDate, c.CareContTime, c.CareContactID,
                   a.ReferralRequestReceivedDate,
                   row_number() OVER (PARTITION BY c.ServiceRequestID
                                      ORDER BY c.CareContDate, c.CareContTime, c.CareContactID) AS contact_order
            FROM mhsds_contact c
            JOIN adult_referrals a ON a.ServiceRequestID = c.ServiceRequestID
            JOIN mhsds_team t ON t.CareProfTeamLocalID = c.team_id
            WHERE c.CareContDate <= $end
              AND {_direct("MHS108")}
              AND t.ServTeamTypeMH IN {_codes("MHS108", "serv_team_type")}
        ),
        second_contacts AS (
            SELECT * FROM contacts s
            WHERE s.contact_order = 2 AND s.CareContDate BETWEEN $start AND $end
              AND NOT EXISTS (
                  SELECT 1 FROM mhsds_spell i
                  WHERE i.ServiceRequestID = s.ServiceRequestID
                    AND i.StartDateHospProvSpell <= fy_end(s.CareContDate)
                    AND coalesce(i.DischDateHospProvSpell, DATE '9999-12-31') >= fy_start(s.CareContDate))
        )
        SELECT count(DISTINCT LocalPatientID) AS value,
               count(DISTINCT LocalPatientID) FILTER (WHERE ReferralRequestReceivedDate < $history_start)
                   AS caveat_people
        FROM second_contacts
    """,
    "MHS116": f"""
        WITH direct AS (
            SELECT c.ServiceRequestID, c.CareContactID, c.team_id
            FROM mhsds_contact c
            WHERE c.CareContDate BETWEEN $start AND $end AND {_direct("MHS116")}
        ),
        ips AS (
            SELECT d.ServiceRequestID FROM direct d
            JOIN mhsds_team t ON t.CareProfTeamLocalID = d.team_id
            WHERE t.ServTeamTypeMH IN {_codes("MHS116", "serv_team_type")}
            UNION
            SELECT d.ServiceRequestID FROM direct d
            JOIN mhsds_care_activity a ON a.CareContactID = d.CareContactID
            WHERE split_part(trim(a.Procedure), ':', 1) IN {_codes("MHS116", "snomed_procedure")}
              AND NOT EXISTS (SELECT 1 FROM ltp_code q
                              WHERE q.metric_id = 'MHS116' AND q.code_list = 'snomed_qualifier_excluded'
                                AND contains(a.Procedure, q.code))
        )
        SELECT count(DISTINCT ips.ServiceRequestID) AS value
        FROM ips JOIN mhsds_referral r ON r.ServiceRequestID = ips.ServiceRequestID
        WHERE r.ReferralRequestReceivedDate >= DATE '2016-01-01'
    """,
    "LOS": f"""
        WITH last_stay AS (
            SELECT HospProvSpellID, MHAdmittedPatientClass,
                   row_number() OVER (PARTITION BY HospProvSpellID
                                      ORDER BY coalesce(EndDateWardStay, DATE '9999-12-31') DESC,
                                               StartDateWardStay DESC, WardStayID DESC) AS rn
            FROM mhsds_ward_stay
        ),
        discharges AS (
            SELECT date_diff('day', s.StartDateHospProvSpell, s.DischDateHospProvSpell) AS los,
                   age_on(p.PersonBirthDate, s.DischDateHospProvSpell) AS age,
                   w.MHAdmittedPatientClass AS bed_class
            FROM mhsds_spell s
            JOIN last_stay w ON w.HospProvSpellID = s.HospProvSpellID AND w.rn = 1
            JOIN mhsds_referral r ON r.ServiceRequestID = s.ServiceRequestID
            JOIN mhsds_person p ON p.LocalPatientID = r.LocalPatientID
            WHERE s.DischDateHospProvSpell BETWEEN $start AND $end
              AND s.StartDateHospProvSpell <= s.DischDateHospProvSpell
        )
        SELECT
            count(*) FILTER (WHERE bed_class IN {_codes("MHS156", "admitted_patient_class")} AND age >= 18)
                AS discharges,
            coalesce(sum(los) FILTER (WHERE bed_class IN {_codes("MHS156", "admitted_patient_class")}
                                        AND age >= 18), 0) AS bed_days,
            count(*) FILTER (WHERE bed_class IN {_codes("MHS100", "admitted_patient_class")}
                               AND age BETWEEN 18 AND 64 AND los >= 60) AS mhs100,
            count(*) FILTER (WHERE bed_class IN {_codes("MHS103", "admitted_patient_class")}
                               AND age >= 65 AND los >= 90) AS mhs103
        FROM discharges
    """,
}


def load_metric_codes(seed_dir: Path) -> list[dict]:
    with open(Path(seed_dir) / "ref_ltp_metric_code.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def load_trajectories(seed_dir: Path) -> list[dict]:
    with open(Path(seed_dir) / "ref_ltp_trajectory.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _set_codes(con, codes: list[dict], window_end: date) -> None:
    rows = [
        (r["metric_id"], r["code_list"], r["code"])
        for r in codes
        if date.fromisoformat(r["valid_from"]) <= window_end
        and (not r.get("valid_to") or window_end <= date.fromisoformat(r["valid_to"]))
    ]
    con.execute("CREATE OR REPLACE TEMP TABLE ltp_code (metric_id VARCHAR, code_list VARCHAR, code VARCHAR)")
    if rows:
        con.executemany("INSERT INTO ltp_code VALUES (?, ?, ?)", rows)


def window(period: str, months: int = WINDOW_MONTHS) -> tuple[date, date, list[str]]:
    """First and last day of the rolling window ending with ``period``, and its months."""
    ms = months_back(period, months)
    return ReportingPeriod.parse(ms[0]).start, ReportingPeriod.parse(period).end, ms


def raw_values(con, period: str, codes: list[dict], history_start: date) -> dict[str, dict]:
    """Unrounded metric values for the window ending ``period`` (internal: not for publication)."""
    start, end, _ = window(period)
    _set_codes(con, codes, end)
    params = {"start": start, "end": end}
    out: dict[str, dict] = {}
    for metric_id in ("MHS95", "MHS91", "MHS116"):
        out[metric_id] = {"value": con.execute(SQL[metric_id], params).fetchone()[0]}
    value, caveat = con.execute(SQL["MHS108"], {**params, "history_start": history_start}).fetchone()
    out["MHS108"] = {"value": value, "caveat_people": caveat}
    discharges, bed_days, mhs100, mhs103 = con.execute(SQL["LOS"], params).fetchone()
    out["MHS156"] = {"value": discharges}
    out["MHS156a"] = {"value": int(bed_days)}
    out["MHS156b"] = {"value": (bed_days / discharges) if discharges else None, "basis": discharges}
    out["MHS100"] = {"value": mhs100}
    out["MHS103"] = {"value": mhs103}
    return out


def publishable(metric: Metric, raw: dict) -> float | int | None:
    """The value as it may be published (disclosure control)."""
    if metric.kind == "mean":
        basis = raw.get("basis") or 0
        return round(raw["value"], 1) if raw["value"] is not None and basis >= 5 else None
    return disclosure_control(raw["value"])


def trajectory_for(trajectories: list[dict], metric_id: str, fy: str) -> dict | None:
    """The trajectory of the financial year, else the latest earlier one (carried forward)."""
    rows = [
        r
        for r in trajectories
        if r["metric_id"] == metric_id and fy_start_year(r["financial_year"]) <= fy_start_year(fy)
    ]
    return max(rows, key=lambda r: fy_start_year(r["financial_year"])) if rows else None


def compare(value: float | None, trajectory: float | None, direction: str) -> str:
    if trajectory is None:
        return "no_trajectory"
    if value is None:
        return "suppressed"
    met = value >= trajectory if direction == "at_least" else value <= trajectory
    return "met" if met else "not_met"


def scaled_trajectory(row: dict, scale: float) -> float:
    """Volumes scale with the synthetic trust's size; a length of stay does not."""
    value = Decimal(str(row["trajectory_value"]))
    if row["unit"] != "days":
        value = (value * Decimal(str(scale))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return float(value)


def ltp_metrics(
    con,
    history: PublishedHistory,
    codes: list[dict],
    trajectories: list[dict],
    trajectory_scale: float = 1.0,
) -> tuple[list[dict], list[dict]]:
    """(metrics at the period, monthly series) as publishable rows.

    The series has one point per published month of the last 12: the rolling-12 value ending in
    that month (points whose window lacks published months are flagged ``window_complete``
    false). Trajectory rows not measurable from MHSDS (SMI health checks, Talking Therapies) are
    listed with status ``not_measurable``.
    """
    period = history.period
    history_start = ReportingPeriod.parse(history.available[0]).start
    fy = financial_year(period)
    rows: list[dict] = []
    series: list[dict] = []
    for point in [m for m in months_back(period, WINDOW_MONTHS) if m in history.available]:
        start, end, ms = window(point)
        raw = raw_values(con, point, codes, history_start)
        missing = history.missing_in(ms[0], ms[-1])
        point_fy = financial_year(point)
        for metric in METRICS:
            value = publishable(metric, raw[metric.metric_id])
            traj = trajectory_for(trajectories, metric.metric_id, point_fy)
            traj_value = scaled_trajectory(traj, trajectory_scale) if traj else None
            entry = {
                "metric_id": metric.metric_id,
                "period": point,
                "window_start": start,
                "window_end": end,
                "months_available": len(ms) - len(missing),
                "window_complete": not missing,
                "value": float(value) if value is not None else None,
                "trajectory": traj_value,
                "status": compare(value, traj_value, traj["direction"]) if traj else "no_trajectory",
            }
            series.append(entry)
            if point != period:
                continue
            caveat = ""
            if metric.metric_id == "MHS108" and raw["MHS108"]["caveat_people"]:
                caveat = (
                    f"2nd-contact order uses contacts published from {history.available[0]}; "
                    f"{disclosure_control(raw['MHS108']['caveat_people']) or 'fewer than 5'} of these people "
                    "are on referrals received earlier, whose earlier contacts are not in the history read."
                )
            if missing:
                caveat = (caveat + " " if caveat else "") + f"Months not published: {', '.join(missing)}."
            rows.append(
                {
                    **entry,
                    "metric_name": metric.name,
                    "unit": metric.unit,
                    "missing_months": ",".join(missing),
                    "trajectory_financial_year": traj["financial_year"] if traj else None,
                    "trajectory_carried_forward": bool(traj and traj["financial_year"] != fy),
                    "trajectory_local_value": float(traj["trajectory_value"]) if traj else None,
                    "trajectory_scale": trajectory_scale if traj and traj["unit"] != "days" else 1.0,
                    "direction": traj["direction"] if traj else None,
                    "local_measure": traj["local_measure"] if traj else None,
                    "pct_of_trajectory": (
                        round(100.0 * float(value) / traj_value, 1)
                        if value is not None and traj_value
                        else None
                    ),
                    "caveat": caveat,
                }
            )
    for metric_id in sorted(
        {t["metric_id"] for t in trajectories if t["mhsds_measurable"].lower() != "true"}
    ):
        traj = trajectory_for(trajectories, metric_id, fy)
        if traj is None:
            continue
        start, end, _ = window(period)
        rows.append(
            {
                "metric_id": metric_id,
                "period": period,
                "window_start": start,
                "window_end": end,
                "months_available": 0,
                "window_complete": False,
                "value": None,
                "trajectory": scaled_trajectory(traj, trajectory_scale),
                "status": "not_measurable",
                "metric_name": traj["local_measure"],
                "unit": traj["unit"],
                "missing_months": "",
                "trajectory_financial_year": traj["financial_year"],
                "trajectory_carried_forward": traj["financial_year"] != fy,
                "trajectory_local_value": float(traj["trajectory_value"]),
                "trajectory_scale": trajectory_scale,
                "direction": traj["direction"],
                "local_measure": traj["local_measure"],
                "pct_of_trajectory": None,
                "caveat": f"Not in MHSDS: {traj['source'].split('; ', 1)[-1]}",
            }
        )
    return rows, series
