"""The finance-facing MHIS report: an Excel workbook and a self-contained HTML page.

Both are built from the same rows as the published Parquet (``MhisOutputs``), so the numbers in
the workbook, the page and the files are the same numbers. Suppressed counts (null in Parquet)
are shown as ``*``. The HTML has inline CSS and inline SVG charts only: no JavaScript, no fonts
or scripts from a CDN, so it can be e-mailed or opened offline.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from mhsds_pipeline.formats import spreadsheet_safe
from mhsds_pipeline.privacy import SUPPRESSION_MARK

STATUS_TEXT = {
    "met": "Met",
    "not_met": "Not met",
    "incomplete": "Incomplete (months not published)",
    "suppressed": "Suppressed",
    "no_trajectory": "No trajectory",
    "not_measurable": "Not from MHSDS",
}


@dataclass
class MhisOutputs:
    """Everything the MHIS run publishes for one period (rows are dicts of plain values)."""

    period: str
    financial_year: str
    position: list[dict]
    categories: list[dict]
    exclusions: list[dict]
    activity: list[dict]
    teams: list[dict]
    metrics: list[dict]
    series: list[dict]
    sources: list[dict]
    notes: list[str] = field(default_factory=list)
    trajectory_scale_basis: str = ""
    code_version: str = ""

    @property
    def current(self) -> dict:
        return self.position[-1]

    @property
    def prior(self) -> dict | None:
        return self.position[0] if len(self.position) > 1 else None


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


def gbp(value, dp: int = 0) -> str:
    if value is None:
        return ""
    v = float(value)
    sign = "-" if v < 0 else ""
    return f"{sign}£{abs(v):,.{dp}f}"


def gbp_m(value) -> str:
    return "" if value is None else f"£{float(value) / 1e6:,.2f}m"


def count(value) -> str:
    return SUPPRESSION_MARK if value is None else f"{float(value):,.0f}"


def metric_text(value, unit: str | None) -> str:
    """A measure value as published: '*' when suppressed, else a whole number (NHS England
    publishes counts rounded to 5 and means rounded to whole days)."""
    if value is None:
        return SUPPRESSION_MARK
    return f"{float(value):,.0f}"


def _plain(value) -> str:
    """A trajectory as set (scaled ones keep their decimal: 626.5, not 626)."""
    return "" if value is None else f"{float(value):,.1f}".removesuffix(".0")


def _metric_display(rows: list[dict]) -> list[dict]:
    return [
        dict(
            r,
            status_text=STATUS_TEXT.get(r["status"], r["status"]),
            value_text=metric_text(r["value"], r.get("unit")) if r["status"] != "not_measurable" else "n/a",
            trajectory_text="" if r.get("trajectory") is None else _plain(r["trajectory"]),
        )
        for r in rows
    ]


def met_text(flag: bool | None) -> str:
    return "" if flag is None else ("Met" if flag else "Not met")


def _months_elapsed(outputs: MhisOutputs) -> int:
    return int(outputs.current["months_with_ledger_data"])


# ---------------------------------------------------------------------------------------------
# Excel
# ---------------------------------------------------------------------------------------------

MONEY_FMT = '"£"#,##0;[Red]-"£"#,##0'
MONEY_P_FMT = '"£"#,##0.00;[Red]-"£"#,##0.00'


def _excel_value(value):
    """A cell value for the workbook. Text a spreadsheet would run as a formula (a leading =, +,
    -, @; openpyxl would even store "=..." as a formula) gets a leading apostrophe."""
    if isinstance(value, Decimal):
        return float(value)
    return spreadsheet_safe(value)


def build_workbook(outputs: MhisOutputs, path: Path) -> Path:
    """Write ``mhis_<YYYY-MM>.xlsx``: Summary, Spend vs target, Exclusions, Activity, Team unit
    costs, LTP metrics, LTP monthly, Sources."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDE7F0")

    def sheet(title: str, columns: list[tuple[str, str, str | None]], rows: list[dict], first: bool = False):
        ws = wb.active if first else wb.create_sheet()
        ws.title = title
        ws.append([label for _, label, _ in columns])
        for cell in ws[1]:
            cell.font, cell.fill = bold, head_fill
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in rows:
            values = []
            for key, _, fmt in columns:
                v = row.get(key)
                if fmt == "count" and v is None and key in row:
                    v = SUPPRESSION_MARK
                values.append(_excel_value(v.isoformat() if isinstance(v, date) else v))
            ws.append(values)
        for idx, (_, label, fmt) in enumerate(columns, start=1):
            letter = get_column_letter(idx)
            ws.column_dimensions[letter].width = max(12, min(48, len(label) + 2))
            if fmt in ("money", "money_p", "pct", "count"):
                number = {"money": MONEY_FMT, "money_p": MONEY_P_FMT, "pct": "0.0", "count": "#,##0"}[fmt]
                for cell in ws[letter][1:]:
                    if isinstance(cell.value, int | float):
                        cell.number_format = number
        ws.freeze_panes = "A2"
        return ws

    cur, prior = outputs.current, outputs.prior
    summary = [
        {"item": "Reporting period", "value": outputs.period},
        {"item": "Financial year", "value": outputs.financial_year},
        {"item": "Months of ledger data (year to date)", "value": cur["months_with_ledger_data"]},
        {"item": "MHIS rule applied", "value": cur["rule_version"]},
        {"item": "Comparison", "value": "spend > target" if cur["comparison"] == "gt" else "spend >= target"},
        {"item": "Baseline: prior-year MHIS outturn (GBP)", "value": cur["baseline_outturn_gbp"]},
        {"item": "Programme allocation base growth (%)", "value": cur["base_growth_pct"]},
        {"item": "Additional uplift (percentage points)", "value": cur["additional_uplift_pct"]},
        {"item": "Prior-year shortfall added (GBP)", "value": cur["prior_year_shortfall_gbp"]},
        {"item": "MHIS target (GBP)", "value": cur["target_gbp"]},
        {"item": "Target basis", "value": cur["target_basis"]},
        {"item": "Year-to-date MHIS spend (GBP)", "value": cur["ytd_mhis_spend_gbp"]},
        {"item": "Year-to-date target (GBP, flat phasing)", "value": cur["ytd_target_gbp"]},
        {"item": "Year-to-date variance (GBP)", "value": cur["ytd_variance_gbp"]},
        {"item": "Forecast outturn from run rate (GBP)", "value": cur["forecast_outturn_gbp"]},
        {"item": "Forecast variance to target (GBP)", "value": cur["forecast_variance_gbp"]},
        {"item": "Forecast MHIS growth (%)", "value": cur["mhis_growth_pct"]},
        {"item": f"MHIS {outputs.financial_year} (forecast)", "value": met_text(cur["meets_standard"])},
    ]
    if prior:
        summary += [
            {"item": f"MHIS {prior['financial_year']} outturn (GBP)", "value": prior["forecast_outturn_gbp"]},
            {"item": f"MHIS {prior['financial_year']} target (GBP)", "value": prior["target_gbp"]},
            {"item": f"MHIS {prior['financial_year']} (final)", "value": met_text(prior["meets_standard"])},
        ]
    summary += [{"item": "Note", "value": n} for n in outputs.notes]
    ws = sheet("Summary", [("item", "Item", None), ("value", "Value", None)], summary, first=True)
    ws.column_dimensions["A"].width = 44
    ws.column_dimensions["B"].width = 60
    for row in ws.iter_rows(min_row=2):
        item, value = row[0].value or "", row[1]
        if "(GBP)" in item and isinstance(value.value, int | float):
            value.number_format = MONEY_P_FMT

    sheet(
        "Spend vs target",
        [
            ("mhis_category", "MHIS category", None),
            ("category_name", "Category", None),
            ("in_mhis_scope", "In MHIS scope", None),
            ("prior_year_mhis_outturn_gbp", "Prior-year MHIS outturn", "money"),
            ("target_gbp", "Indicative target", "money"),
            ("ytd_mhis_spend_gbp", "YTD MHIS spend", "money"),
            ("ytd_target_gbp", "YTD target", "money"),
            ("ytd_variance_gbp", "YTD variance", "money"),
            ("forecast_outturn_gbp", "Forecast outturn", "money"),
            ("forecast_variance_gbp", "Forecast variance", "money"),
            ("ytd_spend_gbp", "YTD spend (all funding)", "money"),
            ("ytd_excluded_gbp", "YTD excluded", "money"),
        ],
        outputs.categories,
    )
    sheet(
        "Exclusions",
        [
            ("exclusion_reason", "Exclusion reason", None),
            ("mhis_category", "MHIS category", None),
            ("ytd_excluded_gbp", "YTD excluded", "money"),
            ("prior_year_excluded_gbp", "Prior-year excluded", "money"),
        ],
        outputs.exclusions,
    )
    sheet(
        "Activity",
        [
            ("mhis_category", "MHIS category", None),
            ("category_name", "Category", None),
            ("spend_gbp", "Spend, 12 months", "money"),
            ("contacts", "Attended contacts", "count"),
            ("people_in_contact", "People in contact", "count"),
            ("referrals", "Referrals received", "count"),
            ("spend_per_contact_gbp", "Spend per contact", "money_p"),
            ("spend_per_person_gbp", "Spend per person", "money_p"),
            ("note", "Note", None),
        ],
        outputs.activity,
    )
    sheet(
        "Team unit costs",
        [
            ("cost_centre", "Cost centre", None),
            ("service_line", "Service line", None),
            ("team_local_id", "Team", None),
            ("mhis_category", "MHIS category (spend)", None),
            ("activity_mhis_category", "MHIS category (activity)", None),
            ("spend_gbp", "Spend, 12 months", "money"),
            ("contacts", "Attended contacts", "count"),
            ("people_in_contact", "People in contact", "count"),
            ("referrals", "Referrals received", "count"),
            ("spend_per_contact_gbp", "Spend per contact", "money_p"),
            ("spend_per_person_gbp", "Spend per person", "money_p"),
        ],
        outputs.teams,
    )
    metric_rows = _metric_display(outputs.metrics)
    ws = sheet(
        "LTP metrics",
        [
            ("metric_id", "Metric", None),
            ("metric_name", "Definition", None),
            ("window_start", "Window start", None),
            ("window_end", "Window end", None),
            ("months_available", "Months published", None),
            ("value", "Value", "count"),
            ("unit", "Unit", None),
            ("trajectory", "Trajectory (scaled)", "pct"),
            ("trajectory_financial_year", "Trajectory year", None),
            ("trajectory_local_value", "Local trajectory", "pct"),
            ("pct_of_trajectory", "% of trajectory", "pct"),
            ("status_text", "Status", None),
            ("caveat", "Caveat", None),
            ("window_months", "Window (months)", None),
            ("nhs_england_source", "NHS England source (menh_bbrb/notebooks)", None),
        ],
        metric_rows,
    )
    for row in ws.iter_rows(min_row=2):
        if isinstance(row[5].value, int | float):  # Value: published counts and means are whole numbers
            row[5].number_format = "#,##0"
    sheet(
        "LTP monthly",
        [
            ("metric_id", "Metric", None),
            ("period", "Month", None),
            ("months_available", "Months published in window", None),
            ("value", "Value over the measure's window", "count"),
            ("trajectory", "Trajectory (scaled)", "pct"),
            ("status", "Status", None),
        ],
        outputs.series,
    )
    sheet(
        "Sources",
        [
            ("kind", "Source", None),
            ("period", "Month", None),
            ("status", "Status", None),
            ("version", "Version", None),
            ("run_id", "Run", None),
            ("code_version", "Code version", None),
        ],
        outputs.sources,
    )
    stamp = datetime.combine(date.fromisoformat(outputs.period + "-01"), datetime.min.time())
    wb.properties.creator = "mhsds_pipeline.finance"
    wb.properties.created = wb.properties.modified = stamp
    wb.properties.title = f"MHIS and LTP access {outputs.period}"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# ---------------------------------------------------------------------------------------------
# SVG charts
# ---------------------------------------------------------------------------------------------

INK, ACTUAL, TARGET, GRID, WARN = "#1f2933", "#005eb8", "#a3c3e6", "#d8dee4", "#b42318"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def svg_spend_vs_target(categories: list[dict], width: int = 760) -> str:
    """Horizontal bars: YTD MHIS spend vs YTD target for each in-scope category."""
    rows = [r for r in categories if r["in_mhis_scope"] and r.get("ytd_target_gbp") is not None]
    if not rows:
        return "<p>No in-scope category has a target.</p>"
    label_w, bar_h, gap = 170, 11, 12
    top = 28
    height = top + len(rows) * (2 * bar_h + gap) + 20
    vmax = max(max(float(r["ytd_mhis_spend_gbp"]), float(r["ytd_target_gbp"])) for r in rows) or 1.0
    plot_w = width - label_w - 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="MHIS spend against target by category">',
        f'<rect x="{label_w}" y="6" width="12" height="10" fill="{ACTUAL}"/>'
        f'<text x="{label_w + 16}" y="15" font-size="11" fill="{INK}">YTD MHIS spend</text>'
        f'<rect x="{label_w + 130}" y="6" width="12" height="10" fill="{WARN}"/>'
        f'<text x="{label_w + 146}" y="15" font-size="11" fill="{INK}">YTD spend below target</text>'
        f'<rect x="{label_w + 300}" y="6" width="12" height="10" fill="{TARGET}"/>'
        f'<text x="{label_w + 316}" y="15" font-size="11" fill="{INK}">YTD target</text>',
    ]
    y = top
    for r in rows:
        spend, target = float(r["ytd_mhis_spend_gbp"]), float(r["ytd_target_gbp"])
        w_s, w_t = plot_w * spend / vmax, plot_w * target / vmax
        colour = ACTUAL if spend >= target else WARN
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h + 4}" font-size="11" text-anchor="end" fill="{INK}">'
            f"{_e(r.get('short_name') or r['category_name'])}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w_s:.1f}" height="{bar_h}" fill="{colour}"/>'
            f'<text x="{label_w + w_s + 4:.1f}" y="{y + bar_h - 1}" font-size="10" fill="{INK}">{gbp_m(spend)} '
            f"({'+' if spend >= target else '-'}£{abs(spend - target) / 1e3:,.1f}k)</text>"
            f'<rect x="{label_w}" y="{y + bar_h}" width="{w_t:.1f}" height="{bar_h}" fill="{TARGET}"/>'
            f'<text x="{label_w + w_t + 4:.1f}" y="{y + 2 * bar_h - 1}" font-size="10" fill="{INK}">{gbp_m(target)}</text>'
        )
        y += 2 * bar_h + gap
    parts.append(f'<line x1="{label_w}" y1="{top - 4}" x2="{label_w}" y2="{y}" stroke="{INK}"/></svg>')
    return "".join(parts)


def svg_trajectory(metric: dict, series: list[dict], width: int = 360, height: int = 200) -> str:
    """Rolling 12-month value by month against the trajectory (hollow points: incomplete window)."""
    points = [s for s in series if s["metric_id"] == metric["metric_id"]]
    values = [s["value"] for s in points if s["value"] is not None]
    trajectories = [s["trajectory"] for s in points if s["trajectory"] is not None]
    if not points or not (values or trajectories):
        return ""
    left, right, top, bottom = 58, 24, 26, 36
    pw, ph = width - left - right, height - top - bottom
    vmax = max(values + trajectories) * 1.1 or 1.0
    n = len(points)

    def x(i: int) -> float:
        return left + (pw * i / max(n - 1, 1))

    def y(v: float) -> float:
        return top + ph * (1 - v / vmax)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(metric["metric_id"])} against trajectory">',
        f'<text x="4" y="16" font-size="12" font-weight="bold" fill="{INK}">{_e(metric["metric_id"])}'
        f" ({_e(metric['unit'])}): {metric_text(metric['value'], metric['unit'])} vs trajectory "
        f"{_plain(metric['trajectory'])}</text>",
    ]
    for frac in (0, 0.5, 1):
        gy = top + ph * (1 - frac)
        parts.append(
            f'<line x1="{left}" y1="{gy:.1f}" x2="{left + pw}" y2="{gy:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{gy + 4:.1f}" font-size="10" text-anchor="end" fill="{INK}">'
            f"{vmax * frac:,.0f}</text>"
        )
    traj = [(i, s["trajectory"]) for i, s in enumerate(points) if s["trajectory"] is not None]
    if traj:
        path = " ".join(f"{'M' if k == 0 else 'L'}{x(i):.1f},{y(v):.1f}" for k, (i, v) in enumerate(traj))
        parts.append(
            f'<path d="{path}" fill="none" stroke="{WARN}" stroke-dasharray="5,3" stroke-width="1.5"/>'
        )
    seg = [(i, s["value"]) for i, s in enumerate(points) if s["value"] is not None]
    if seg:
        path = " ".join(f"{'M' if k == 0 else 'L'}{x(i):.1f},{y(v):.1f}" for k, (i, v) in enumerate(seg))
        parts.append(f'<path d="{path}" fill="none" stroke="{ACTUAL}" stroke-width="2"/>')
    for i, s in enumerate(points):
        if s["value"] is None:
            continue
        fill = ACTUAL if s["window_complete"] else "#ffffff"
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(s["value"]):.1f}" r="3" fill="{fill}" stroke="{ACTUAL}">'
            f"<title>{_e(s['period'])}: {metric_text(s['value'], metric['unit'])} "
            f"({s['months_available']} of 12 months)</title></circle>"
        )
    for i, anchor in sorted({(0, "start"), (n - 1, "end")}):
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 18}" font-size="10" text-anchor="{anchor}" fill="{INK}">'
            f"{_e(points[i]['period'])}</text>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 4}" font-size="10" fill="{INK}">— rolling 12 months'
        f'  <tspan fill="{WARN}">- - trajectory</tspan>  ○ window incomplete</text></svg>'
    )
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

CSS = """
body{font-family:Arial,Helvetica,sans-serif;color:#1f2933;margin:24px;max-width:1100px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:2px solid #005eb8}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #d8dee4;padding:3px 6px}
th{background:#dde7f0;text-align:left}td.n{text-align:right}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #d8dee4;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:18px}.met{color:#007f3b}.not_met{color:#b42318}.incomplete{color:#8a6d00}
.charts{display:flex;flex-wrap:wrap;gap:8px}.note{font-size:12px;color:#4b5563}
"""


def _table(columns: list[tuple[str, str, str | None]], rows: list[dict]) -> str:
    fmt = {
        "money": gbp,
        "money_p": lambda v: gbp(v, 2),
        "count": count,
        "pct": lambda v: "" if v is None else f"{v:,.1f}",
    }
    out = ["<table><tr>" + "".join(f"<th>{_e(label)}</th>" for _, label, _ in columns) + "</tr>"]
    for r in rows:
        cells = []
        for key, _, kind in columns:
            v = r.get(key)
            if kind in fmt:
                cells.append(f'<td class="n">{_e(fmt[kind](v))}</td>')
            elif isinstance(v, bool):
                cells.append(f"<td>{'yes' if v else 'no'}</td>")
            else:
                # Tables are copied from the page into Excel: formula-like text is escaped there too.
                cells.append(f"<td>{_e('' if v is None else spreadsheet_safe(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def build_html(outputs: MhisOutputs, path: Path) -> Path:
    """Write ``mhis_report.html`` (self-contained: inline CSS and SVG, no JavaScript)."""
    cur, prior = outputs.current, outputs.prior
    verdict = "met" if cur["meets_standard"] else "not_met"
    cards = [
        ("MHIS target", gbp_m(cur["target_gbp"])),
        ("Forecast outturn", gbp_m(cur["forecast_outturn_gbp"])),
        (
            "Forecast variance",
            ("+" if cur["forecast_variance_gbp"] >= 0 else "") + gbp(cur["forecast_variance_gbp"]),
        ),
        ("YTD MHIS spend", gbp_m(cur["ytd_mhis_spend_gbp"])),
        ("Forecast growth", f"{cur['mhis_growth_pct']:.2f}%" if cur["mhis_growth_pct"] is not None else ""),
    ]
    uplift = f" + {cur['additional_uplift_pct']:.3f} pts" if cur["additional_uplift_pct"] else ""
    short = " + prior-year shortfall" if cur["prior_year_shortfall_gbp"] else ""
    op = "&gt;" if cur["comparison"] == "gt" else "≥"
    body = [
        f"<h1>Mental Health Investment Standard and LTP access — {_e(outputs.period)}</h1>",
        f'<p class="note">Financial year {_e(outputs.financial_year)}, {_months_elapsed(outputs)} month(s) of '
        f"ledger data. Rule {_e(cur['rule_version'])}: target = prior-year MHIS outturn "
        f"{gbp(cur['baseline_outturn_gbp'])} × (1 + {cur['base_growth_pct']:.3f}% base growth{uplift}){short}; "
        f"compliance when spend {op} target (target basis: {_e(cur['target_basis'])}).</p>",
        f'<p>Forecast for {_e(outputs.financial_year)}: <b class="{verdict}">{met_text(cur["meets_standard"])}</b>'
        + (
            f' &nbsp; Final {_e(prior["financial_year"])}: <b class="{"met" if prior["meets_standard"] else "not_met"}">'
            f"{met_text(prior['meets_standard'])}</b> (outturn {gbp_m(prior['forecast_outturn_gbp'])} vs target "
            f"{gbp_m(prior['target_gbp'])})"
            if prior
            else ""
        )
        + "</p>",
        '<div class="cards">'
        + "".join(f'<div class="card">{_e(k)}<b>{_e(v)}</b></div>' for k, v in cards)
        + "</div>",
        "<h2>Spend against target by MHIS category (year to date)</h2>",
        svg_spend_vs_target(outputs.categories),
        _table(
            [
                ("category_name", "Category", None),
                ("in_mhis_scope", "In scope", None),
                ("prior_year_mhis_outturn_gbp", "Prior-year MHIS outturn", "money"),
                ("target_gbp", "Indicative target", "money"),
                ("ytd_mhis_spend_gbp", "YTD MHIS spend", "money"),
                ("ytd_target_gbp", "YTD target", "money"),
                ("ytd_variance_gbp", "YTD variance", "money"),
                ("forecast_outturn_gbp", "Forecast", "money"),
                ("ytd_excluded_gbp", "YTD excluded", "money"),
            ],
            outputs.categories,
        ),
        '<p class="note">Category targets are indicative: the MHIS target apportioned by each category\'s share of '
        "the prior-year MHIS outturn. Compliance is judged on the total only.</p>",
        "<h2>Spend outside MHIS</h2>",
        _table(
            [
                ("exclusion_reason", "Reason", None),
                ("category_name", "Category", None),
                ("ytd_excluded_gbp", "YTD", "money"),
                ("prior_year_excluded_gbp", "Prior year", "money"),
            ],
            outputs.exclusions,
        ),
        "<h2>LTP access metrics against trajectory</h2>",
        '<div class="charts">'
        + "".join(
            svg_trajectory(m, outputs.series)
            for m in outputs.metrics
            if m["status"] not in ("not_measurable", "no_trajectory")
        )
        + "</div>",
        _table(
            [
                ("metric_id", "Metric", None),
                ("metric_name", "Definition", None),
                ("months_available", "Months", None),
                ("value_text", "Value", None),
                ("trajectory_text", "Trajectory", None),
                ("trajectory_financial_year", "Trajectory year", None),
                ("pct_of_trajectory", "% of trajectory", "pct"),
                ("status_text", "Status", None),
                ("caveat", "Caveat", None),
                ("nhs_england_source", "NHS England source", None),
            ],
            _metric_display(outputs.metrics),
        ),
        '<p class="note">Each measure follows NHS England\'s code (NHSDigital/mental-health-monthly-statistics, '
        "Mental_Health_Monthly_Statistics/menh_bbrb/notebooks/, file and lines as cited): access measures over "
        "12 submitted months, length of stay over the quarter (and, labelled, over 12 months for the local "
        "trajectory); England residents; counts under 5 suppressed and others rounded to 5; means in whole "
        "days. <i>Incomplete</i>: a month of the window is not published, so the figure is not compared.</p>",
        f'<p class="note">Trajectories: Herefordshire and Worcestershire ICS strategy, scaled by '
        f"{_e(outputs.trajectory_scale_basis)}; the latest year's trajectory is carried forward when none is set "
        "for this year.</p>",
        "<h2>Activity and unit costs (months with both ledger and MHSDS data, of the last 12)</h2>",
        _table(
            [
                ("category_name", "Category", None),
                ("spend_gbp", "Spend", "money"),
                ("contacts", "Attended contacts", "count"),
                ("people_in_contact", "People", "count"),
                ("referrals", "Referrals", "count"),
                ("spend_per_contact_gbp", "£ per contact", "money_p"),
                ("spend_per_person_gbp", "£ per person", "money_p"),
            ],
            outputs.activity,
        ),
        "<h2>Sources and notes</h2>",
        _table(
            [
                ("kind", "Source", None),
                ("period", "Month", None),
                ("status", "Status", None),
                ("version", "Version", None),
            ],
            outputs.sources,
        ),
        '<ul class="note">'
        + "".join(f"<li>{_e(n)}</li>" for n in outputs.notes)
        + "<li>Counts follow MHSDS disclosure control: under 5 suppressed (*), others rounded to the nearest 5; "
        "unit costs use the published counts. Money is not suppressed. No patient-level data.</li>"
        + f"<li>Code version {_e(outputs.code_version)}.</li></ul>",
    ]
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>MHIS {_e(outputs.period)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
