"""Community mental health 4-week waits, as NHS England's code computes them (MRS01, MRS01a,
MRS01b, MRS03, MRS15).

Source: ``menh_bbrb/notebooks/02_Specific_Prepare/02_4w_waits/4w_waits_prep.py`` (commit 7b4d742)
and ``measure_metadata.py`` 469-534, 620-634, 1130-1144; docs/mhis.md "4-week waits".

* **Referrals in scope** (4w_waits_prep.py 132-183): every record of a referral up to the period
  whose team types for the month include a core community team (A05 A06 A08 A09 A12 A13 A16 C03
  C10; not A14/D05), received at 18+, England residents, never with a hospital spell on the
  referral. Each referral's end is its discharge date, capped at its record's period end.
* **Referral-spells** (189-253): a person's referrals at the provider are merged when they
  overlap or are at most 5 days apart; a spell runs from the earliest referral received date.
* **Clock stop** (495-511): the latest of the spell's first attended direct contact, first baseline
  outcome measure (MHS606/MHS607 with a tool in ``mh_ass``, not Current View), first care plan or
  intervention (a care activity's or an indirect activity's procedure in the MHSDS psychological
  therapies / psychosocial / medication refsets, 4w_waits_prep.py 311-379) and, for spells from April 2024, first meaningful assessment (a procedure in the MHSDS
  assessment procedures refset 1853441000000109). A missing component means no clock stop.
* **Quarter** (540-600): spells overlapping the quarter ending with the period. MRS01 clock stops
  in the quarter; MRS01a those within 28 days of the spell start; MRS01b their percentage; MRS03
  spells open at the period end still waiting for a 2nd contact; MRS15 spells whose 2nd contact
  fell in the quarter.

Refset members come from the seed ``ref_snomed_intervention_valueset`` (value_set_id = the
refset). Its assessment refset has no member until the trust loads the refset from the NHS
SNOMED CT UK Edition (TRUD): until then no spell from April 2024 has a clock stop, and MRS01's
caveat says so. Care plans (MHS008/MHS009) are not built yet (#13): the care plan or intervention
component comes from procedures only.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mhsds_pipeline.finance.measure_sql import ENGLAND, Metric, codes, run
from mhsds_pipeline.period import ReportingPeriod

ASSESSMENT_REFSET = "1853441000000109"
_SRC = "02_4w_waits/4w_waits_prep.py"

METRICS: tuple[Metric, ...] = (
    Metric(
        "MRS01",
        "CMH referral-spells with a clock stop in the quarter",
        "spells",
        "count",
        3,
        source=f"{_SRC} 132-511, 540-600; measure_metadata.py 470-484",
    ),
    Metric(
        "MRS01a",
        "... of which the clock stopped within 4 weeks (28 days) of the spell start",
        "spells",
        "count",
        3,
        source=f"{_SRC} 567; measure_metadata.py 485-499",
    ),
    Metric(
        "MRS01b",
        "Percentage of clock stops within 4 weeks (quarter)",
        "%",
        "percent",
        3,
        numerator="MRS01a",
        source="measure_metadata.py 500-514",
    ),
    Metric(
        "MRS03",
        "Open CMH referral-spells still waiting for a 2nd contact at the period end",
        "spells",
        "count",
        3,
        source=f"{_SRC} 521-584; measure_metadata.py 620-634",
    ),
    Metric(
        "MRS15",
        "CMH referral-spells whose 2nd contact fell in the quarter",
        "spells",
        "count",
        3,
        source=f"{_SRC} 576-584; measure_metadata.py 1130-1144",
    ),
)


SQL = f"""
WITH refs AS (
    SELECT r.UniqMonthID, r.RecordNumber, r.UniqServReqID, r.Person_ID, r.OrgIDProv,
           r.ReferralRequestReceivedDate, r.ServDischDate, r.ReportingPeriodEndDate,
           CASE WHEN r.ServDischDate IS NULL OR r.ServDischDate > r.ReportingPeriodEndDate
                THEN r.ReportingPeriodEndDate ELSE r.ServDischDate END AS Der_EndDate
    FROM der_referral_month r
    JOIN der_service_team_type t ON t.RecordNumber = r.RecordNumber AND t.UniqServReqID = r.UniqServReqID
    WHERE r.UniqMonthID <= $end_month AND r.AgeServReferRecDate >= 18 AND {ENGLAND}
      AND t.ServTeamTypeRefToMH IN {codes("MRS01", "serv_team_type")}
      AND NOT EXISTS (SELECT 1 FROM der_inpatients h
                      WHERE h.UniqServReqID = r.UniqServReqID AND h.Person_ID = r.Person_ID
                        AND h.UniqMonthID <= $end_month)
),
records AS (SELECT DISTINCT RecordNumber, UniqServReqID FROM refs),
latest AS (
    SELECT * FROM refs
    QUALIFY row_number() OVER (PARTITION BY Person_ID, UniqServReqID
                               ORDER BY UniqMonthID DESC, Der_EndDate DESC) = 1
),
dates AS (
    SELECT Person_ID, OrgIDProv, Der_Date, sum(inc) AS inc
    FROM (SELECT Person_ID, OrgIDProv, ReferralRequestReceivedDate AS Der_Date, 1 AS inc FROM latest
          UNION ALL
          SELECT Person_ID, OrgIDProv, Der_EndDate + 5, -1 FROM latest)
    GROUP BY Person_ID, OrgIDProv, Der_Date
),
cumf AS (
    SELECT *, sum(inc) OVER (PARTITION BY Person_ID, OrgIDProv ORDER BY Der_Date) AS cumf FROM dates
),
grouped AS (
    SELECT *, sum(CASE WHEN cumf = 0 THEN 1 ELSE 0 END)
                  OVER (PARTITION BY Person_ID, OrgIDProv ORDER BY Der_Date DESC) AS inc_group
    FROM cumf
),
spells AS (
    SELECT Person_ID, OrgIDProv, Person_ID || OrgIDProv || inc_group AS SpellID,
           min(Der_Date) AS StartDate, max(Der_Date) - 5 AS EndDate
    FROM grouped
    GROUP BY Person_ID, OrgIDProv, inc_group
    HAVING min(Der_Date) >= DATE '2016-01-01'
),
contacts AS (
    SELECT s.SpellID, a.Der_ContactDate,
           row_number() OVER (PARTITION BY s.SpellID
                              ORDER BY a.Der_ContactDate, a.Der_ContactTime, a.Der_ActivityUniqID) AS n
    FROM spells s
    JOIN der_activity a ON a.Person_ID = s.Person_ID AND a.Der_ContactDate BETWEEN s.StartDate AND s.EndDate
    JOIN refs r ON r.RecordNumber = a.RecordNumber AND r.UniqServReqID = a.UniqServReqID
    WHERE a.Der_ActivityType = 'DIRECT' AND a.Der_DirectContact
),
outcome AS (
    SELECT s.SpellID, min(x.Der_AssessmentDate) AS first_event
    FROM spells s
    JOIN der_coded_assessment x
      ON x.Person_ID = s.Person_ID AND x.Der_AssessmentDate BETWEEN s.StartDate AND s.EndDate
    JOIN records r ON r.RecordNumber = x.RecordNumber AND r.UniqServReqID = x.UniqServReqID
    WHERE x.CodedAssToolType IN (SELECT concept_id FROM mh_ass)
    GROUP BY s.SpellID
),
procedure_events AS (
    SELECT s.SpellID, a.Der_ContactDate, c.Der_SNoMEDProcCode AS concept_id
    FROM spells s
    JOIN der_activity a ON a.Person_ID = s.Person_ID AND a.Der_ContactDate BETWEEN s.StartDate AND s.EndDate
                        AND a.Der_ActivityType = 'DIRECT'
    JOIN der_care_activity c ON c.UniqMonthID = a.UniqMonthID AND c.CareContactID = a.CareContactID
    JOIN records r ON r.RecordNumber = a.RecordNumber AND r.UniqServReqID = a.UniqServReqID
    UNION ALL
    SELECT s.SpellID, a.Der_ContactDate, a.Der_IndActProcCode
    FROM spells s
    JOIN der_activity a ON a.Person_ID = s.Person_ID AND a.Der_ContactDate BETWEEN s.StartDate AND s.EndDate
                        AND a.Der_ActivityType = 'INDIRECT'
    JOIN records r ON r.RecordNumber = a.RecordNumber AND r.UniqServReqID = a.UniqServReqID
),
procedures AS (
    SELECT e.SpellID,
           min(e.Der_ContactDate) FILTER (WHERE v.refset_id = '{ASSESSMENT_REFSET}') AS assessment,
           min(e.Der_ContactDate) FILTER (WHERE v.refset_id <> '{ASSESSMENT_REFSET}') AS intervention
    FROM procedure_events e
    JOIN refset v ON v.concept_id = e.concept_id
    WHERE e.concept_id NOT IN {codes("MRS01", "snomed_excluded")}
    GROUP BY e.SpellID
),
open_refs AS (
    SELECT s.SpellID,
           max(CASE WHEN l.ReportingPeriodEndDate = $end
                     AND (l.ServDischDate IS NULL OR date_diff('day', s.EndDate, $end) <= 5)
                    THEN 1 ELSE 0 END) AS is_open
    FROM spells s
    JOIN latest l ON l.Person_ID = s.Person_ID AND l.OrgIDProv = s.OrgIDProv
                 AND l.ReferralRequestReceivedDate BETWEEN s.StartDate AND s.EndDate
    GROUP BY s.SpellID
),
master AS (
    SELECT s.SpellID, s.StartDate, s.EndDate, c1.Der_ContactDate AS first_contact,
           c2.Der_ContactDate AS second_contact, coalesce(o.is_open, 0) AS is_open,
           CASE WHEN s.StartDate >= DATE '2024-04-01' OR c1.Der_ContactDate >= DATE '2024-04-01'
                THEN CASE WHEN c1.Der_ContactDate IS NULL OR oc.first_event IS NULL
                               OR p.assessment IS NULL OR p.intervention IS NULL THEN NULL
                          ELSE greatest(c1.Der_ContactDate, oc.first_event, p.assessment, p.intervention) END
                ELSE CASE WHEN c1.Der_ContactDate IS NULL OR oc.first_event IS NULL OR p.intervention IS NULL
                          THEN NULL ELSE greatest(c1.Der_ContactDate, oc.first_event, p.intervention) END
           END AS clock_stop
    FROM spells s
    LEFT JOIN contacts c1 ON c1.SpellID = s.SpellID AND c1.n = 1
    LEFT JOIN contacts c2 ON c2.SpellID = s.SpellID AND c2.n = 2
    LEFT JOIN outcome oc ON oc.SpellID = s.SpellID
    LEFT JOIN procedures p ON p.SpellID = s.SpellID
    LEFT JOIN open_refs o ON o.SpellID = s.SpellID
),
quarter AS (
    SELECT *,
           (EndDate > $end OR (EndDate BETWEEN $end - 5 AND $end AND is_open = 1)) AS spell_open
    FROM master
    WHERE StartDate <= $end AND EndDate >= $start
)
SELECT
    count(DISTINCT SpellID) FILTER (WHERE clock_stop BETWEEN $start AND $end) AS mrs01,
    count(DISTINCT SpellID) FILTER (WHERE clock_stop BETWEEN $start AND $end
                                      AND date_diff('day', StartDate, clock_stop) <= 28) AS mrs01a,
    count(DISTINCT SpellID) FILTER (WHERE spell_open AND (second_contact IS NULL OR second_contact > $end)) AS mrs03,
    count(DISTINCT SpellID) FILTER (WHERE second_contact BETWEEN $start AND $end) AS mrs15,
    count(DISTINCT SpellID) AS spells,
    count(DISTINCT SpellID) FILTER (WHERE first_contact IS NOT NULL) AS with_first_contact
FROM quarter
"""


def register_reference(con, reference_dir: Path) -> dict:
    """The refset members and assessment tools (``mh_ass``) the clock stop needs, from the seeds;
    returns how many members each refset has."""
    with open(Path(reference_dir) / "ref_snomed_intervention_valueset.csv", newline="") as fh:
        members = [(r["value_set_id"], r["concept_id"]) for r in csv.DictReader(fh) if r["value_set_id"]]
    with open(Path(reference_dir) / "ref_assessment_tools.csv", newline="") as fh:
        tools = [(r["concept_id"],) for r in csv.DictReader(fh) if r["tool"] != "Current View"]
    con.execute("CREATE OR REPLACE TEMP TABLE refset (refset_id VARCHAR, concept_id VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE mh_ass (concept_id VARCHAR)")
    if members:
        con.executemany("INSERT INTO refset VALUES (?, ?)", members)
    if tools:
        con.executemany("INSERT INTO mh_ass VALUES (?)", tools)
    counts: dict[str, int] = {}
    for refset_id, _ in members:
        counts[refset_id] = counts.get(refset_id, 0) + 1
    return counts


def raw_values(con, period: str) -> dict[str, dict]:
    """Unrounded 4-week-wait values for the quarter ending ``period`` (``ltp_code`` and the
    reference tables registered)."""
    rp = ReportingPeriod.parse(period)
    params = {"start": rp.shift(-2).start, "end": rp.end, "end_month": rp.uniq_month_id}
    mrs01, mrs01a, mrs03, mrs15, spells, with_first = run(con, SQL, params)
    return {
        "MRS01": {"value": mrs01, "spells": spells, "with_first_contact": with_first},
        "MRS01a": {"value": mrs01a},
        "MRS01b": {"value": 100.0 * mrs01a / mrs01 if mrs01 else None},
        "MRS03": {"value": mrs03},
        "MRS15": {"value": mrs15},
    }


def caveat(metric: Metric, refset_members: dict) -> str:
    if metric.metric_id.startswith("MRS01") and not refset_members.get(ASSESSMENT_REFSET):
        return (
            "No member of the MHSDS assessment procedures refset (1853441000000109) is loaded, so no spell "
            "from April 2024 can have a clock stop: load the refset from the SNOMED CT UK Edition into "
            "ref_snomed_intervention_valueset (README 'Reference data')."
        )
    return ""
