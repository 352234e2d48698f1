"""MHSDS activity set beside MHIS spend: contacts, people and referrals by MHIS category and team.

Over the rolling 12 months ending with the period, restricted to the months that have both a
published MHSDS month and ledger lines (the *basis months*), so that money and activity always
cover the same months: with one month published, a unit cost is one month's spend over one
month's activity, never 12 months of spend over one month of activity.

* spend: every ledger line of the basis months, all funding sources (the cost of delivering
  the activity, whether or not it counts towards MHIS), from ``mhis_spend_monthly``;
* contacts: attended care contacts (AttendStatus 5 or 6, any mechanism; DNAs and cancellations
  do not count) dated in the window; people in contact: distinct LocalPatientID among them;
  referrals: referrals received in the window;
* the MHIS category of activity comes from the team's type and intended age group (MHS902
  ServTeamTypeMH, ServTeamIntAgeGroup) through the seed ``ref_mhis_team_type_map`` (an exact age
  group row first, else the '*' row), and that of spend from the cost centre map, so both sides
  use the same categories; the team table keeps the PLICS-style keys (cost centre, service line,
  team) and joins money to activity on the team.

Counts are disclosure-controlled (under 5 suppressed, others to the nearest 5); spend is not a
count about people and is published as is (mhis_ltp.md C7). Unit costs divide spend by the
published counts, so anyone can reproduce them, and are withheld when the count is suppressed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from mhsds_pipeline.finance.ltp_metrics import window
from mhsds_pipeline.finance.mhis import ZERO, money
from mhsds_pipeline.finance.published import PublishedHistory
from mhsds_pipeline.privacy import disclosure_control

#: Attended care contacts (mhis_ltp.md B0): AttendStatus 5 or 6.
ATTENDED = ("5", "6")
_ATTENDED_SQL = "(" + ", ".join(f"'{c}'" for c in ATTENDED) + ")"

_TEAM_CATEGORY_SQL = """
    CREATE OR REPLACE TEMP TABLE team_category AS
    SELECT t.CareProfTeamLocalID AS team_id, t.ServTeamTypeMH, t.ServTeamIntAgeGroup,
           coalesce(exact.mhis_category, any_age.mhis_category, 'UNMAPPED') AS mhis_category
    FROM mhsds_team t
    LEFT JOIN team_type_map exact
        ON exact.serv_team_type_mh = t.ServTeamTypeMH AND exact.serv_team_int_age_group = t.ServTeamIntAgeGroup
    LEFT JOIN team_type_map any_age
        ON any_age.serv_team_type_mh = t.ServTeamTypeMH AND any_age.serv_team_int_age_group = '*'
"""

_ACTIVITY_SQL = """
    WITH contacts AS (
        SELECT coalesce(tc.mhis_category, 'UNMAPPED') AS mhis_category, c.team_id, c.LocalPatientID
        FROM mhsds_contact c
        LEFT JOIN team_category tc ON tc.team_id = c.team_id
        WHERE c.CareContDate BETWEEN $start AND $end AND c.AttendStatus IN {attended}
          AND strftime(c.CareContDate, '%Y-%m') IN (SELECT month FROM basis_month)
    ),
    referrals AS (
        SELECT coalesce(tc.mhis_category, 'UNMAPPED') AS mhis_category, r.CareProfTeamLocalID AS team_id
        FROM mhsds_referral r
        LEFT JOIN team_category tc ON tc.team_id = r.CareProfTeamLocalID
        WHERE r.ReferralRequestReceivedDate BETWEEN $start AND $end
          AND strftime(r.ReferralRequestReceivedDate, '%Y-%m') IN (SELECT month FROM basis_month)
    ),
    by_key AS (
        SELECT {key}, count(*) AS contacts, count(DISTINCT LocalPatientID) AS people, 0 AS referrals
        FROM contacts GROUP BY {key}
        UNION ALL
        SELECT {key}, 0, 0, count(*) FROM referrals GROUP BY {key}
    )
    SELECT {key}, sum(contacts)::BIGINT, sum(people)::BIGINT, sum(referrals)::BIGINT
    FROM by_key GROUP BY {key} ORDER BY {key}
"""


def _register_team_map(con, team_type_map: Iterable[Mapping]) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE team_type_map "
        "(serv_team_type_mh VARCHAR, serv_team_int_age_group VARCHAR, mhis_category VARCHAR)"
    )
    rows = [(r["serv_team_type_mh"], r["serv_team_int_age_group"], r["mhis_category"]) for r in team_type_map]
    if rows:
        con.executemany("INSERT INTO team_type_map VALUES (?, ?, ?)", rows)
    con.execute(_TEAM_CATEGORY_SQL)


def team_categories(con, team_type_map: Iterable[Mapping]) -> dict[str, str]:
    """Team -> MHIS category of every published team (for consistency checks and reports)."""
    _register_team_map(con, team_type_map)
    return dict(con.execute("SELECT team_id, mhis_category FROM team_category ORDER BY team_id").fetchall())


def _month_of(month_start) -> str:
    return month_start.strftime("%Y-%m") if hasattr(month_start, "strftime") else str(month_start)[:7]


def _unit(spend: Decimal, count: int | None) -> Decimal | None:
    return money(spend / count) if count else None


def activity_by_category(
    con,
    history: PublishedHistory,
    spend_rows: Iterable[Mapping],
    team_type_map: Iterable[Mapping],
    categories: Iterable[Mapping],
) -> tuple[list[dict], list[dict]]:
    """(rows by MHIS category, rows by team/cost centre) for the rolling 12 months."""
    period = history.period
    start, end, months = window(period)
    missing = history.missing_in(months[0], months[-1])
    _register_team_map(con, team_type_map)
    spend_rows = list(spend_rows)
    ledger_months = {_month_of(r["month_start"]) for r in spend_rows} & set(months)
    basis = [m for m in months if m in ledger_months and m in history.available]
    con.execute("CREATE OR REPLACE TEMP TABLE basis_month (month VARCHAR)")
    if basis:
        con.executemany("INSERT INTO basis_month VALUES (?)", [(m,) for m in basis])
    params = {"start": start, "end": end}
    by_cat = {
        r[0]: r[1:]
        for r in con.execute(
            _ACTIVITY_SQL.format(key="mhis_category", attended=_ATTENDED_SQL), params
        ).fetchall()
    }
    by_team = {
        r[0]: r[1:]
        for r in con.execute(_ACTIVITY_SQL.format(key="team_id", attended=_ATTENDED_SQL), params).fetchall()
    }
    total_people = con.execute(
        "SELECT count(DISTINCT LocalPatientID) FROM mhsds_contact "
        f"WHERE CareContDate BETWEEN $start AND $end AND AttendStatus IN {_ATTENDED_SQL} "
        "AND strftime(CareContDate, '%Y-%m') IN (SELECT month FROM basis_month)",
        params,
    ).fetchone()[0]

    cat_info = {r["mhis_category"]: r for r in categories}
    spend_cat: dict[str, Decimal] = defaultdict(lambda: ZERO)
    spend_team: dict[tuple[str, str, str | None], Decimal] = defaultdict(lambda: ZERO)
    cat_of_cc: dict[str, str] = {}
    for r in spend_rows:
        if _month_of(r["month_start"]) not in basis:
            continue
        amount = Decimal(str(r["amount_gbp"]))
        spend_cat[r["mhis_category"]] += amount
        spend_team[(r["cost_centre"], r["service_line"], r["team_local_id"])] += amount
        cat_of_cc[r["cost_centre"]] = r["mhis_category"]
    ledger_missing = [m for m in months if m not in ledger_months]
    note = [
        f"spend and activity over the same {len(basis)} month(s) with both ledger and published MHSDS data"
        + (f" ({basis[0]}..{basis[-1]})" if basis else "")
    ]
    if missing:
        note.append(f"MHSDS months not published: {', '.join(missing)}")
    if ledger_missing:
        note.append(f"ledger months missing: {', '.join(ledger_missing)}")

    cat_rows = []
    for cat in sorted(set(spend_cat) | set(by_cat)):
        contacts, people, referrals = by_cat.get(cat, (0, 0, 0))
        c_pub, p_pub, r_pub = (
            disclosure_control(contacts),
            disclosure_control(people),
            disclosure_control(referrals),
        )
        info = cat_info.get(cat, {})
        spend = money(spend_cat[cat])
        cat_rows.append(
            {
                "period": period,
                "window_start": start,
                "window_end": end,
                "mhis_category": cat,
                "category_name": info.get("category_name", cat),
                "in_mhis_scope": str(info.get("in_mhis_scope", "false")).lower() == "true",
                "spend_gbp": spend,
                "contacts": c_pub,
                "people_in_contact": p_pub,
                "referrals": r_pub,
                "spend_per_contact_gbp": _unit(spend, c_pub),
                "spend_per_person_gbp": _unit(spend, p_pub),
                "has_mhsds_activity": cat in by_cat,
                "note": "; ".join(note),
            }
        )
    total_spend = money(sum(spend_cat.values(), ZERO))
    total_contacts = disclosure_control(sum(v[0] for v in by_cat.values()))
    total_people = disclosure_control(total_people)
    cat_rows.append(
        {
            "period": period,
            "window_start": start,
            "window_end": end,
            "mhis_category": "TOTAL",
            "category_name": "All categories (people counted once)",
            "in_mhis_scope": False,
            "spend_gbp": total_spend,
            "contacts": total_contacts,
            "people_in_contact": total_people,
            "referrals": disclosure_control(sum(v[2] for v in by_cat.values())),
            "spend_per_contact_gbp": _unit(total_spend, total_contacts),
            "spend_per_person_gbp": _unit(total_spend, total_people),
            "has_mhsds_activity": bool(by_cat),
            "note": "; ".join(note),
        }
    )

    team_cat = dict(con.execute("SELECT team_id, mhis_category FROM team_category").fetchall())
    team_rows = []
    seen_teams = set()
    for (cc, line, team), spend in sorted(spend_team.items(), key=lambda kv: kv[0][0]):
        contacts, people, referrals = by_team.get(team, (0, 0, 0)) if team else (0, 0, 0)
        seen_teams.add(team)
        c_pub, p_pub = disclosure_control(contacts), disclosure_control(people)
        team_rows.append(
            {
                "period": period,
                "cost_centre": cc,
                "service_line": line,
                "team_local_id": team,
                "mhis_category": cat_of_cc[cc],
                "activity_mhis_category": team_cat.get(team) if team else None,
                "spend_gbp": money(spend),
                "contacts": c_pub,
                "people_in_contact": p_pub,
                "referrals": disclosure_control(referrals),
                "spend_per_contact_gbp": _unit(money(spend), c_pub),
                "spend_per_person_gbp": _unit(money(spend), p_pub),
            }
        )
    for team in sorted(t for t in by_team if t not in seen_teams):
        contacts, people, referrals = by_team[team]
        team_rows.append(
            {
                "period": period,
                "cost_centre": None,
                "service_line": None,
                "team_local_id": team,
                "mhis_category": None,
                "activity_mhis_category": team_cat.get(team, "UNMAPPED"),
                "spend_gbp": None,
                "contacts": disclosure_control(contacts),
                "people_in_contact": disclosure_control(people),
                "referrals": disclosure_control(referrals),
                "spend_per_contact_gbp": None,
                "spend_per_person_gbp": None,
            }
        )
    return cat_rows, team_rows
