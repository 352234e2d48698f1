"""NHS Long Term Plan access and length-of-stay measures, as NHS England's own code computes them.

Each measure follows NHS England's measure preparation in ``NHSDigital/mental-health-monthly-
statistics`` (``Mental_Health_Monthly_Statistics/menh_bbrb/notebooks/``, commit 7b4d742; file and
line ranges in docs/mhis.md "LTP measures") over the national derived fields that dbt builds from
the published months (``models/derived``: RecordNumber, Person_ID, UniqServReqID, ages,
LADistrictAuth, the referral's team types for the month, direct/indirect activity). The derived
tables are read from the warehouse into an in-memory DuckDB; only aggregates leave this module.

Windows are in submitted months (UniqMonthID), as nationally:

=========  ====================================================================================
MHS95      12 months. People aged 0-17 at referral (AgeServReferRecDate) with a direct attended
           contact or any indirect activity (MHS204) on that referral's record of a month in the
           window, aged 0-17 at the contact (indirect: at the month's end); England residents
MHS91      12 months. Women (gender rule from April 2023) on a referral-month with a specialist
           perinatal team (C02/F02, MHS101 or MHS102) and an attended face-to-face or video
           contact on that record; England residents
MHS108     12 months. People 18+ at referral with a core community team type for the month whose
           referral has its 2nd direct attended contact among the window's records (contacts
           before the window do not count); referrals with a hospital spell in the same
           financial year are removed; England residents
MHS116     12 months. Referrals (not people) received since 2016 with an IPS team type (D05) and a
           direct contact, or a direct contact carrying an IPS SNOMED CT procedure; England residents
MHS156     the quarter ending with the period. Discharges of people 18+ (age at the record month's
           end) whose discharge ward stay is adult acute, older adult acute or PICU; 156a bed days,
           156b mean length of stay rounded to whole days (suppressed when bed days are under 5)
MHS100     the quarter. People 18-64 discharged from adult acute beds after 60+ days
MHS103     the quarter. People 65+ discharged from older adult acute beds after 90+ days
=========  ====================================================================================

England residents: LADistrictAuth starting 'E', or unknown (null or blank), exactly as NHS
England's filter. Publication is at provider level, so counts are suppressed under 5 and rounded
to the nearest 5; the mean is a whole number, suppressed on its numerator (bed days).

The local trajectory for length of stay is an annual figure: beside the national quarter, the same
measures over the rolling 12 months are published as ``MHS156_12M``/``MHS156b_12M``, labelled, and
those are what the trajectory is compared with.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from mhsds_pipeline.finance import waits
from mhsds_pipeline.finance.measure_sql import ENGLAND, Metric, codes, run, whole_number
from mhsds_pipeline.finance.published import PublishedHistory, months_back
from mhsds_pipeline.finance.schema import financial_year, fy_start_year
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.privacy import disclosure_control

WINDOW_MONTHS = 12
QUARTER_MONTHS = 3

#: The national derived tables the measures read (dbt models/derived).
DERIVED_TABLES = (
    "der_referral_month",
    "der_service_team_type",
    "der_activity",
    "der_care_activity",
    "der_inpatients",
    "der_coded_assessment",
)

#: Statuses against a trajectory.
STATUSES = ("met", "not_met", "incomplete", "no_trajectory", "suppressed", "not_measurable")


_CYP = "04_cyp_perinatal/cyp_perinatal_prep.py"
_LOS = "01_los/los_prep.py"
METRICS: tuple[Metric, ...] = (
    Metric(
        "MHS95",
        "CYP aged 0-17 with at least one contact, incl. indirect activity (12 months rolling)",
        "people",
        "count",
        12,
        trajectory_id="MHS95",
        source=f"{_CYP} 3-111; measure_metadata.py 1460-1477",
    ),
    Metric(
        "MHS91",
        "Women accessing specialist community perinatal MH services (12 months rolling)",
        "people",
        "count",
        12,
        trajectory_id="MHS91",
        source=f"{_CYP} 364-540; measure_metadata.py 1445-1459",
    ),
    Metric(
        "MHS108",
        "Adults and older adults with 2+ contacts with community MH services (12 months rolling)",
        "people",
        "count",
        12,
        trajectory_id="MHS108",
        source="03_cmh/cmh_prep.py 176-287; measure_metadata.py 1335-1349",
    ),
    Metric(
        "MHS116",
        "Referrals accessing Individual Placement and Support (12 months rolling)",
        "referrals",
        "count",
        12,
        trajectory_id="MHS116",
        source="06_ips/ips_prep.py 1-185; measure_metadata.py 2233-2247",
    ),
    Metric(
        "MHS156",
        "Discharges from adult acute, older adult acute and PICU beds (quarter)",
        "discharges",
        "count",
        3,
        source=f"{_LOS} 24-155; measure_metadata.py 420-434",
    ),
    Metric(
        "MHS156a",
        "Bed days of those discharges (quarter)",
        "bed days",
        "count",
        3,
        source=f"{_LOS} 136-155; measure_metadata.py 435-449",
    ),
    Metric(
        "MHS156b",
        "Mean length of stay of those discharges, whole days (quarter)",
        "days",
        "mean",
        3,
        numerator="MHS156a",
        source=f"{_LOS} 136-155; measure_metadata.py 450-464",
    ),
    Metric(
        "MHS100",
        "People 18-64 discharged from adult acute beds with length of stay 60+ days (quarter)",
        "people",
        "count",
        3,
        source=f"{_LOS} 24-155; measure_metadata.py 15-29",
    ),
    Metric(
        "MHS103",
        "People 65+ discharged from older adult acute beds with length of stay 90+ days (quarter)",
        "people",
        "count",
        3,
        source=f"{_LOS} 24-155; measure_metadata.py 285-299",
    ),
    Metric(
        "MHS156_12M",
        "Discharges from adult acute, older adult acute and PICU beds (12 months rolling: local trajectory window)",
        "discharges",
        "count",
        12,
        source=f"{_LOS} (national definition over the local trajectory's 12 months)",
    ),
    Metric(
        "MHS156a_12M",
        "Bed days of those discharges (12 months rolling: local trajectory window)",
        "bed days",
        "count",
        12,
        source=f"{_LOS} (national definition over the local trajectory's 12 months)",
    ),
    Metric(
        "MHS156b_12M",
        "Mean length of stay, whole days (12 months rolling: local trajectory window)",
        "days",
        "mean",
        12,
        numerator="MHS156a_12M",
        trajectory_id="MHS156b",
        source=f"{_LOS} (national definition over the local trajectory's 12 months)",
    ),
)
#: Every measure published: the access and length-of-stay measures, then the 4-week waits.
ALL_METRICS: tuple[Metric, ...] = METRICS + waits.METRICS
METRIC_BY_ID = {m.metric_id: m for m in ALL_METRICS}


_IN_WINDOW = "r.UniqMonthID BETWEEN $start_month AND $end_month"

SQL: dict[str, str] = {
    # cyp_perinatal_prep.py 3-111: referral-months in the window, 0-17 at referral, England;
    # direct attended contacts and every indirect activity on the same record, 0-17 at the activity.
    "MHS95": f"""
        WITH refs AS (
            SELECT r.RecordNumber, r.UniqServReqID, r.Person_ID, r.AgeRepPeriodEnd
            FROM der_referral_month r
            WHERE {_IN_WINDOW} AND r.AgeServReferRecDate BETWEEN 0 AND 17 AND {ENGLAND}
        ),
        acts AS (
            SELECT r.Person_ID, a.Der_ActivityType
            FROM der_activity a
            JOIN refs r ON r.RecordNumber = a.RecordNumber AND r.UniqServReqID = a.UniqServReqID
            WHERE (a.Der_ActivityType = 'INDIRECT' OR a.Der_DirectContact)
              AND coalesce(a.AgeCareContDate, r.AgeRepPeriodEnd) BETWEEN 0 AND 17
        )
        SELECT count(DISTINCT Person_ID) AS value,
               count(DISTINCT Person_ID) FILTER (WHERE Person_ID NOT IN (
                   SELECT Person_ID FROM acts WHERE Der_ActivityType = 'DIRECT')) AS indirect_only
        FROM acts
    """,
    # cyp_perinatal_prep.py 364-540: perinatal team type for the month, gender, England; attended
    # face-to-face or video contacts (no indirect activity), no age filter.
    "MHS91": f"""
        WITH refs AS (
            SELECT DISTINCT r.RecordNumber, r.UniqServReqID, r.Person_ID
            FROM der_referral_month r
            JOIN der_service_team_type t ON t.RecordNumber = r.RecordNumber AND t.UniqServReqID = r.UniqServReqID
            WHERE {_IN_WINDOW} AND {ENGLAND}
              AND t.ServTeamTypeRefToMH IN {codes("MHS91", "serv_team_type")}
              AND (r.GenderIDCode IN ('2', '3')
                   OR (r.GenderIDCode = '1' AND r.GenderSameAtBirth = 'N')
                   OR (r.GenderIDCode IS NULL AND r.Gender = '2'))
        )
        SELECT count(DISTINCT r.Person_ID) AS value
        FROM refs r
        JOIN der_activity a ON a.RecordNumber = r.RecordNumber AND a.UniqServReqID = r.UniqServReqID
        WHERE a.Der_ActivityType = 'DIRECT'
          AND a.AttendStatus IN {codes("MHS91", "attend_status")}
          AND a.ConsMechanismMH IN {codes("MHS91", "cons_mechanism")}
    """,
    # cmh_prep.py 176-287: adult referral-months in the window with a core community team type,
    # England, no hospital spell on the referral in the same financial year; direct attended
    # contacts on those records numbered per person and referral; the 2nd one qualifies. The join
    # to the team-type rows is kept as nationally (a record with two qualifying team rows joins
    # each contact twice, cmh_prep.py 254-257); ``distinct_value`` counts each contact once.
    "MHS108": f"""
        WITH refs AS (
            SELECT r.RecordNumber, r.UniqServReqID, r.Person_ID
            FROM der_referral_month r
            JOIN der_service_team_type t ON t.RecordNumber = r.RecordNumber AND t.UniqServReqID = r.UniqServReqID
            WHERE {_IN_WINDOW} AND r.AgeServReferRecDate >= 18 AND {ENGLAND}
              AND t.ServTeamTypeRefToMH IN {codes("MHS108", "serv_team_type")}
              AND NOT EXISTS (SELECT 1 FROM der_inpatients i
                              WHERE i.Person_ID = r.Person_ID AND i.UniqServReqID = r.UniqServReqID
                                AND i.Der_FY = r.Der_FY)
        ),
        linked AS (
            SELECT r.Person_ID, r.UniqServReqID, a.Der_ActivityUniqID, a.Der_ContactDate, a.Der_ContactTime
            FROM refs r
            JOIN der_activity a ON a.RecordNumber = r.RecordNumber AND a.UniqServReqID = r.UniqServReqID
            WHERE a.Der_ActivityType = 'DIRECT' AND a.Der_DirectContact
        ),
        national AS (
            SELECT Person_ID, row_number() OVER (PARTITION BY Person_ID, UniqServReqID
                ORDER BY Der_ContactDate, Der_ContactTime, Der_ActivityUniqID) AS n
            FROM linked
        ),
        once AS (
            SELECT Person_ID, row_number() OVER (PARTITION BY Person_ID, UniqServReqID
                ORDER BY Der_ContactDate, Der_ContactTime, Der_ActivityUniqID) AS n
            FROM (SELECT DISTINCT * FROM linked)
        )
        SELECT (SELECT count(DISTINCT Person_ID) FROM national WHERE n = 2) AS value,
               (SELECT count(DISTINCT Person_ID) FROM once WHERE n = 2) AS distinct_value
    """,
    # ips_prep.py 1-185: IPS referral-months (team type D05, or a direct contact carrying an IPS
    # procedure) received since 2016, England, with a direct contact on the record; referrals counted.
    "MHS116": f"""
        WITH refs AS (
            SELECT r.RecordNumber, r.UniqServReqID
            FROM der_referral_month r
            WHERE {_IN_WINDOW} AND r.ReferralRequestReceivedDate >= DATE '2016-01-01' AND {ENGLAND}
        ),
        direct AS (
            SELECT a.RecordNumber, a.UniqServReqID, a.CareContactID, a.UniqMonthID
            FROM der_activity a
            WHERE a.Der_ActivityType = 'DIRECT' AND a.Der_DirectContact
        ),
        by_team AS (
            SELECT DISTINCT r.UniqServReqID
            FROM refs r
            JOIN der_service_team_type t ON t.RecordNumber = r.RecordNumber AND t.UniqServReqID = r.UniqServReqID
            JOIN direct d ON d.RecordNumber = r.RecordNumber AND d.UniqServReqID = r.UniqServReqID
            WHERE t.ServTeamTypeRefToMH IN {codes("MHS116", "serv_team_type")}
        ),
        by_snomed AS (
            SELECT DISTINCT r.UniqServReqID
            FROM refs r
            JOIN direct d ON d.RecordNumber = r.RecordNumber AND d.UniqServReqID = r.UniqServReqID
            JOIN der_care_activity c ON c.UniqMonthID = d.UniqMonthID AND c.CareContactID = d.CareContactID
            WHERE c.Der_SNoMEDProcCode IN {codes("MHS116", "snomed_procedure")}
              AND (c.Der_SNoMEDProcQual IS NULL
                   OR c.Der_SNoMEDProcQual NOT IN {codes("MHS116", "snomed_qualifier_excluded")})
        )
        SELECT count(*) AS value FROM (SELECT UniqServReqID FROM by_team UNION SELECT UniqServReqID FROM by_snomed)
    """,
    # los_prep.py 24-155: spell records of the window's months discharged in the window; bed class
    # of the ward stay ending on the discharge date; age at the record month's end.
    "LOS": f"""
        WITH spells AS (
            SELECT DISTINCT i.UniqHospProvSpellID, i.Person_ID, i.Hosp_LOS, i.AgeRepPeriodEnd,
                   i.MHAdmittedPatientClass
            FROM der_inpatients i
            WHERE i.UniqMonthID BETWEEN $start_month AND $end_month
              AND i.DischDateHospProvSpell BETWEEN $start AND $end
              AND i.MHAdmittedPatientClass IN {codes("MHS156", "admitted_patient_class")}
        )
        SELECT
            count(DISTINCT UniqHospProvSpellID) FILTER (WHERE AgeRepPeriodEnd >= 18) AS discharges,
            coalesce(sum(Hosp_LOS) FILTER (WHERE AgeRepPeriodEnd >= 18), 0) AS bed_days,
            avg(Hosp_LOS) FILTER (WHERE AgeRepPeriodEnd >= 18) AS mean_los,
            count(DISTINCT Person_ID) FILTER (WHERE MHAdmittedPatientClass IN {codes("MHS100", "admitted_patient_class")}
                                                AND AgeRepPeriodEnd BETWEEN 18 AND 64 AND Hosp_LOS >= 60) AS mhs100,
            count(DISTINCT Person_ID) FILTER (WHERE MHAdmittedPatientClass IN {codes("MHS103", "admitted_patient_class")}
                                                AND AgeRepPeriodEnd >= 65 AND Hosp_LOS >= 90) AS mhs103
        FROM spells
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
    """First and last day of the window of ``months`` submitted months ending with ``period``."""
    ms = months_back(period, months)
    return ReportingPeriod.parse(ms[0]).start, ReportingPeriod.parse(period).end, ms


def open_derived(settings, read=None):
    """An in-memory DuckDB holding the national derived tables dbt built in the warehouse
    (``read``: table name -> Arrow table, for a warehouse ``read_mart`` does not read, e.g. Spark)."""
    import duckdb

    from mhsds_pipeline.warehouse import read_mart

    con = duckdb.connect()
    for name in DERIVED_TABLES:
        table = read(name) if read is not None else read_mart(settings, name)
        con.register("_derived", table)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _derived')
        con.unregister("_derived")
    return con


def _params(period: str, months: int) -> dict:
    start, end, _ = window(period, months)
    end_month = ReportingPeriod.parse(period).uniq_month_id
    return {"start": start, "end": end, "start_month": end_month - months + 1, "end_month": end_month}


def raw_values(
    con, period: str, codes: list[dict], reference_dir: Path | None = None, registered: bool = False
) -> dict[str, dict]:
    """Unrounded measure values for ``period`` (internal: not for publication); with the
    reference seeds directory, the 4-week waits too (``registered``: its tables are already in
    ``con``)."""
    end = ReportingPeriod.parse(period).end
    _set_codes(con, codes, end)
    year = _params(period, WINDOW_MONTHS)
    quarter = _params(period, QUARTER_MONTHS)
    out: dict[str, dict] = {}
    value, indirect_only = run(con, SQL["MHS95"], year)
    out["MHS95"] = {"value": value, "indirect_only": indirect_only}
    out["MHS91"] = {"value": run(con, SQL["MHS91"], year)[0]}
    value, distinct_value = run(con, SQL["MHS108"], year)
    out["MHS108"] = {"value": value, "distinct_value": distinct_value}
    out["MHS116"] = {"value": run(con, SQL["MHS116"], year)[0]}
    for suffix, params in (("", quarter), ("_12M", year)):
        discharges, bed_days, mean_los, mhs100, mhs103 = run(con, SQL["LOS"], params)
        out[f"MHS156{suffix}"] = {"value": discharges}
        out[f"MHS156a{suffix}"] = {"value": int(bed_days)}
        out[f"MHS156b{suffix}"] = {"value": float(mean_los) if mean_los is not None else None}
        if not suffix:
            out["MHS100"] = {"value": mhs100}
            out["MHS103"] = {"value": mhs103}
    if reference_dir is not None:
        if not registered:
            waits.register_reference(con, reference_dir)
        out.update(waits.raw_values(con, period))
    return out


def publishable(metric: Metric, raw: dict[str, dict]) -> float | int | None:
    """The value as NHS England publishes it at provider level (mhsds_functions.py 1344-1429):
    counts suppressed under 5 and rounded to the nearest 5; a mean suppressed when its numerator is
    under 5, else rounded to a whole number."""
    value = raw[metric.metric_id]["value"]
    if metric.kind in ("mean", "percent"):
        numerator = raw[metric.numerator]["value"] if metric.numerator else 0
        if value is None or disclosure_control(numerator) is None:
            return None
        return whole_number(value)
    return disclosure_control(value)


def trajectory_for(trajectories: list[dict], metric_id: str, fy: str) -> dict | None:
    """The trajectory of the financial year, else the latest earlier one (carried forward)."""
    rows = [
        r
        for r in trajectories
        if r["metric_id"] == metric_id and fy_start_year(r["financial_year"]) <= fy_start_year(fy)
    ]
    return max(rows, key=lambda r: fy_start_year(r["financial_year"])) if rows else None


def compare(
    value: float | None, trajectory: float | None, direction: str | None, missing: list[str] = ()
) -> str:
    """Status of a measure: ``incomplete`` whenever a month of its window is unpublished (a partial
    window is neither a figure to compare nor one to quote), else no_trajectory / suppressed /
    met / not_met."""
    if missing:
        return "incomplete"
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


def _caveat(
    metric: Metric, raw: dict[str, dict], missing: list[str], no_indirect: list[str], refsets: dict
) -> str:
    notes = [waits.caveat(metric, refsets)] if metric in waits.METRICS else []
    if metric.metric_id == "MHS95":
        if raw["MHS95"]["indirect_only"]:
            n = disclosure_control(raw["MHS95"]["indirect_only"])
            notes.append(f"{n if n is not None else 'fewer than 5'} counted through indirect activity only.")
        if no_indirect:
            notes.append(f"Months published without MHS204 indirect activity: {', '.join(no_indirect)}.")
    if metric.metric_id == "MHS108":
        extra = disclosure_control(raw["MHS108"]["value"] - raw["MHS108"]["distinct_value"])
        if raw["MHS108"]["value"] != raw["MHS108"]["distinct_value"]:
            notes.append(
                "As NHS England's code does (cmh_prep.py 254-257), a contact is joined once per qualifying "
                "team row of its referral-month; counting each contact once would give "
                f"{extra if extra is not None else 'fewer than 5'} fewer people."
            )
    if metric.metric_id.endswith("_12M"):
        notes.append(
            "Local trajectory window (rolling 12 months); NHS England publishes this measure quarterly."
        )
    if missing:
        notes.append(f"Months not published: {', '.join(missing)}.")
    return " ".join(n for n in notes if n)


def ltp_metrics(
    con,
    history: PublishedHistory,
    codes: list[dict],
    trajectories: list[dict],
    trajectory_scale: float = 1.0,
    reference_dir: Path | None = None,
) -> tuple[list[dict], list[dict]]:
    """(measures at the period, monthly series) as publishable rows.

    The series has one point per published month of the last 12: each measure over its own
    window ending in that month, ``incomplete`` when the window lacks published months. Trajectory
    rows not measurable from MHSDS (SMI health checks, Talking Therapies) are listed with status
    ``not_measurable``.
    """
    period = history.period
    fy = financial_year(period)
    without_indirect = set(history.without_table("MHS204IndirectActivity"))
    measures = ALL_METRICS if reference_dir is not None else METRICS
    refsets = waits.register_reference(con, reference_dir) if reference_dir is not None else {}
    rows: list[dict] = []
    series: list[dict] = []
    for point in [m for m in months_back(period, WINDOW_MONTHS) if m in history.available]:
        raw = raw_values(con, point, codes, reference_dir, registered=True)
        point_fy = financial_year(point)
        for metric in measures:
            start, end, ms = window(point, metric.months)
            missing = history.missing_in(ms[0], ms[-1])
            value = publishable(metric, raw)
            traj = (
                trajectory_for(trajectories, metric.trajectory_id, point_fy) if metric.trajectory_id else None
            )
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
                "status": compare(value, traj_value, traj["direction"] if traj else None, missing),
            }
            series.append(entry)
            if point != period:
                continue
            no_indirect = sorted(m for m in ms if m in without_indirect)
            rows.append(
                {
                    **entry,
                    "metric_name": metric.name,
                    "unit": metric.unit,
                    "window_months": metric.months,
                    "missing_months": ",".join(missing),
                    "nhs_england_source": metric.source,
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
                    "caveat": _caveat(metric, raw, missing, no_indirect, refsets),
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
                "window_months": WINDOW_MONTHS,
                "missing_months": "",
                "nhs_england_source": "",
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
