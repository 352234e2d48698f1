"""The finance workbook ``mhis_<YYYY-MM>.xlsx``, built with openpyxl's own features.

Every data sheet is an Excel table (filters, banded rows) with a frozen header and columns
fitted to their content; money cells carry a £ format, percentages are stored as fractions with
a % format, dates are date cells, and status cells are coloured by conditional formatting
(Met green, Not met red, Incomplete amber) so a re-sorted or filtered sheet stays coloured.
Native charts: spend against target on the Summary sheet, and each LTP metric's monthly series
against its trajectory on the LTP trajectory sheet. The rows of each data sheet are the rows of
the Parquet file of the same content; suppressed counts are the text ``*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.table import Table, TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from mhsds_pipeline.finance.report import (
    MhisOutputs,
    excel_value,
    met_status,
    metric_display,
    month_date,
    status_text,
    unit_label,
)
from mhsds_pipeline.privacy import SUPPRESSION_MARK

MONEY_FMT = '"£"#,##0;[Red]-"£"#,##0'
MONEY_P_FMT = '"£"#,##0.00;[Red]-"£"#,##0.00'
MONEY_M_FMT = '"£"#,##0.000"m"'
PCT_FMT = "0.0%"
PCT_2_FMT = "0.00%"
DATE_FMT = "yyyy-mm-dd"
MONTH_FMT = "yyyy-mm"
NUMBER_FORMATS = {
    "money": MONEY_FMT,
    "money_p": MONEY_P_FMT,
    "pct": PCT_FMT,
    "pct2": PCT_2_FMT,
    "count": "#,##0",  # a published count: '*' when suppressed
    "number": "#,##0",  # a whole number, blank when absent
    "decimal": "#,##0.0",
    "int": "0",
    "date": DATE_FMT,
    "month": MONTH_FMT,
}
MIN_WIDTH, MAX_WIDTH = 10, 60
TABLE_STYLE = "TableStyleMedium2"
FILLS = {  # status word prefix -> (fill, font colour): the report's badge colours
    "Met": ("E6F4EA", "007F3B"),
    "Not met": ("FBE7E5", "D5281B"),
    "Incomplete": ("FFF4D6", "8A5A00"),
}


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    kind: str | None = None  # a NUMBER_FORMATS key, 'status' (STATUS_TEXT words) or None (text)


def cell_value(value, kind: str | None):
    """The value stored in a cell: fractions for percentages, dates for dates, '*' for a
    suppressed count, status words for status codes; text made formula-safe."""
    if kind == "count" and value is None:
        return SUPPRESSION_MARK
    if value is None:
        return None
    if kind in ("pct", "pct2"):
        return float(value) / 100
    if kind == "status":
        return status_text(value)
    if kind == "month":
        return month_date(value) or excel_value(value)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    return excel_value(value)


def _table_name(title: str) -> str:
    return re.sub(r"\W", "", title.title()) or "Data"


def _fit_widths(ws: Worksheet, first_row: int = 1, min_col: int = 1, max_col: int | None = None) -> None:
    """Column widths from the longest value (capped; longer text wraps)."""
    wrap = Alignment(wrap_text=True, vertical="top")
    for col in ws.iter_cols(min_row=first_row, min_col=min_col, max_col=max_col or ws.max_column):
        longest = max((len(_shown(c.value)) for c in col), default=0)
        width = max(MIN_WIDTH, min(MAX_WIDTH, longest + 2))
        letter = get_column_letter(col[0].column)
        ws.column_dimensions[letter].width = max(ws.column_dimensions[letter].width or 0, width)
        for c in col:
            if len(_shown(c.value)) > MAX_WIDTH - 2:
                c.alignment = wrap


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    return str(value)


def _colour_status(ws: Worksheet, ref: str) -> None:
    """Conditional fills on a status range (rules follow the cells when sorted or filtered)."""
    first = ref.split(":")[0].replace("$", "")
    for word, (fill, font) in FILLS.items():
        formula = f'{first}="{word}"' if word != "Incomplete" else f'LEFT({first},10)="{word}"'
        ws.conditional_formatting.add(
            ref,
            FormulaRule(
                formula=[formula],
                fill=PatternFill("solid", start_color=fill, end_color=fill),
                font=Font(color=font, bold=True),
            ),
        )


def write_table(
    ws: Worksheet, columns: list[Col], rows: list[dict], name: str, top: int = 1, left: int = 1
) -> str:
    """Write ``rows`` as an Excel table at (``top``, ``left``); returns its range."""
    for j, col in enumerate(columns):
        cell = ws.cell(top, left + j, col.label)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for i, row in enumerate(rows, start=1):
        for j, col in enumerate(columns):
            value = cell_value(row.get(col.key), col.kind)
            cell = ws.cell(top + i, left + j, value)
            fmt = NUMBER_FORMATS.get(col.kind or "")
            if fmt and not isinstance(value, str):
                cell.number_format = fmt
    last = top + max(len(rows), 1)  # an Excel table needs a body row, even an empty one
    ref = f"{get_column_letter(left)}{top}:{get_column_letter(left + len(columns) - 1)}{last}"
    table = Table(displayName=name, ref=ref)
    table.tableStyleInfo = TableStyleInfo(name=TABLE_STYLE, showRowStripes=True)
    ws.add_table(table)
    for j, col in enumerate(columns):
        if col.kind == "status" and rows:
            letter = get_column_letter(left + j)
            _colour_status(ws, f"{letter}{top + 1}:{letter}{last}")
    return ref


def data_sheet(wb: Workbook, title: str, columns: list[Col], rows: list[dict]) -> Worksheet:
    ws = wb.create_sheet(title)
    write_table(ws, columns, rows, _table_name(title))
    ws.freeze_panes = "A2"
    _fit_widths(ws)
    return ws


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------


def summary_rows(outputs: MhisOutputs) -> list[tuple[str, object, str | None]]:
    """(item, value, kind) of the Summary sheet; every £ item has kind 'money_p'."""
    cur, prior = outputs.current, outputs.prior
    fy = outputs.financial_year
    rows: list[tuple[str, object, str | None]] = [
        ("Reporting period", outputs.period, "month"),
        ("Financial year", fy, None),
        ("Months of ledger data (year to date)", cur["months_with_ledger_data"], "int"),
        ("MHIS rule applied", cur["rule_version"], None),
        ("Comparison", "spend > target" if cur["comparison"] == "gt" else "spend >= target", None),
        ("Baseline: prior-year MHIS outturn (GBP)", cur["baseline_outturn_gbp"], "money_p"),
        ("Programme allocation base growth (%)", cur["base_growth_pct"], "pct2"),
        ("Additional uplift (percentage points)", cur["additional_uplift_pct"], "pct2"),
        ("Prior-year shortfall added (GBP)", cur["prior_year_shortfall_gbp"], "money_p"),
        ("MHIS target (GBP)", cur["target_gbp"], "money_p"),
        ("Target basis", cur["target_basis"], None),
        ("Year-to-date MHIS spend (GBP)", cur["ytd_mhis_spend_gbp"], "money_p"),
        ("Year-to-date target (GBP, flat phasing)", cur["ytd_target_gbp"], "money_p"),
        ("Year-to-date variance (GBP)", cur["ytd_variance_gbp"], "money_p"),
        ("Forecast outturn from run rate (GBP)", cur["forecast_outturn_gbp"], "money_p"),
        ("Forecast variance to target (GBP)", cur["forecast_variance_gbp"], "money_p"),
        ("Forecast MHIS growth (%)", cur["mhis_growth_pct"], "pct2"),
        (f"MHIS {fy} (forecast)", met_status(cur["meets_standard"]), "status"),
    ]
    if prior:
        pfy = prior["financial_year"]
        rows += [
            (f"MHIS {pfy} outturn (GBP)", prior["forecast_outturn_gbp"], "money_p"),
            (f"MHIS {pfy} target (GBP)", prior["target_gbp"], "money_p"),
            (f"MHIS {pfy} (final)", met_status(prior["meets_standard"]), "status"),
        ]
    rows += [("Note", n, None) for n in outputs.notes]
    return rows


def summary_sheet(wb: Workbook, outputs: MhisOutputs) -> Worksheet:
    ws = wb.active
    ws.title = "Summary"
    items = summary_rows(outputs)
    ws.append(["Item", "Value"])
    for item, value, kind in items:
        ws.append([excel_value(item), cell_value(value, kind)])
        cell = ws.cell(ws.max_row, 2)
        if kind in NUMBER_FORMATS and not isinstance(cell.value, str):
            cell.number_format = NUMBER_FORMATS[kind]
        if kind == "status":
            _colour_status(ws, f"B{ws.max_row}")
    last = len(items) + 1
    table = Table(displayName="SummaryItems", ref=f"A1:B{last}")
    table.tableStyleInfo = TableStyleInfo(name=TABLE_STYLE, showRowStripes=True)
    ws.add_table(table)
    ws.freeze_panes = "A2"

    # chart data below the summary (a filter on the summary never hides it), in £ million
    chart_rows = [
        {
            "category": r.get("short_name") or r["category_name"],
            "spend": float(r["ytd_mhis_spend_gbp"]) / 1e6,
            "target": float(r["ytd_target_gbp"]) / 1e6,
        }
        for r in outputs.categories
        if r["in_mhis_scope"] and r.get("ytd_target_gbp") is not None
    ]
    top = last + 3
    ws.cell(top - 1, 1, "Chart data: in-scope categories, year to date, £ million").font = Font(italic=True)
    cols = [
        Col("category", "In-scope category"),
        Col("spend", "YTD MHIS spend (£m)"),
        Col("target", "YTD target (£m)"),
    ]
    write_table(ws, cols, chart_rows, "SpendVsTargetChartData", top=top)
    for row in ws.iter_rows(min_row=top + 1, max_row=top + len(chart_rows), min_col=2, max_col=3):
        for c in row:
            c.number_format = MONEY_M_FMT
    _fit_widths(ws, max_col=3)
    if chart_rows:
        chart = BarChart()
        chart.type = "bar"  # horizontal: category names read across
        chart.title = "YTD MHIS spend against YTD target, £ million"
        chart.y_axis.title = "£ million"
        chart.y_axis.number_format = '"£"0.0"m"'
        chart.y_axis.majorGridlines = None
        chart.x_axis.scaling.orientation = "maxMin"  # first category at the top, as on the sheet
        chart.x_axis.delete = chart.y_axis.delete = False
        data = Reference(ws, min_col=2, max_col=3, min_row=top, max_row=top + len(chart_rows))
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + len(chart_rows)))
        chart.series[0].graphicalProperties.solidFill = "005EB8"
        chart.series[1].graphicalProperties.solidFill = "A3C3E6"
        chart.legend.position = "b"
        chart.height, chart.width = 2 + 0.9 * len(chart_rows), 18
        ws.add_chart(chart, "D2")
    return ws


# ---------------------------------------------------------------------------------------------
# LTP trajectory: the monthly series pivoted by metric, with one line chart per metric
# ---------------------------------------------------------------------------------------------


def charted_metrics(outputs: MhisOutputs) -> list[dict]:
    """The metrics compared with a trajectory (the HTML report charts the same ones)."""
    with_series = {s["metric_id"] for s in outputs.series}
    return [
        m
        for m in outputs.metrics
        if m["status"] not in ("not_measurable", "no_trajectory") and m["metric_id"] in with_series
    ]


def _all_months(periods: list[str]) -> list[str]:
    dates = sorted(d for d in (month_date(p) for p in set(periods)) if d is not None)
    if not dates:
        return []
    months, y, m = [], dates[0].year, dates[0].month
    while (y, m) <= (dates[-1].year, dates[-1].month):
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def trajectory_sheet(wb: Workbook, outputs: MhisOutputs) -> Worksheet:
    ws = wb.create_sheet("LTP trajectory")
    metrics = charted_metrics(outputs)
    months = _all_months([s["period"] for s in outputs.series])
    by_key = {(s["metric_id"], s["period"]): s for s in outputs.series}
    columns = [Col("period", "Month", "month")]
    rows = [{"period": m} for m in months]
    for metric in metrics:
        mid = metric["metric_id"]
        columns += [
            Col(f"{mid}|v", f"{mid} value", "number"),
            Col(f"{mid}|t", f"{mid} trajectory", "decimal"),
        ]
        for row in rows:
            point = by_key.get((mid, row["period"]), {})
            row[f"{mid}|v"], row[f"{mid}|t"] = point.get("value"), point.get("trajectory")
    write_table(ws, columns, rows, "LtpTrajectory")
    ws.freeze_panes = "B2"
    _fit_widths(ws)
    note_row = len(rows) + 3
    ws.cell(
        note_row,
        1,
        "Blank value: suppressed (* on the LTP monthly sheet) or the month not published; a line "
        "chart leaves a gap there. Values are over the measure's window as published.",
    ).font = Font(italic=True)
    for k, metric in enumerate(metrics):
        chart = LineChart()
        chart.title = f"{metric['metric_id']}: monthly value against trajectory"
        chart.y_axis.title = unit_label(metric)
        chart.x_axis.title = "Month"
        chart.x_axis.number_format = MONTH_FMT
        chart.x_axis.delete = chart.y_axis.delete = False
        chart.display_blanks = "gap"
        col = 2 + 2 * k
        chart.add_data(
            Reference(ws, min_col=col, max_col=col + 1, min_row=1, max_row=len(rows) + 1),
            titles_from_data=True,
        )
        chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=len(rows) + 1))
        value, trajectory = chart.series
        value.marker.symbol = "circle"
        value.graphicalProperties.line.solidFill = "005EB8"
        value.marker.graphicalProperties.line.solidFill = "005EB8"
        trajectory.graphicalProperties.line.solidFill = "D5281B"
        trajectory.graphicalProperties.line.dashStyle = "dash"
        trajectory.marker.symbol = "none"
        chart.legend.position = "b"
        chart.height, chart.width = 7.5, 16
        anchor_col = get_column_letter(len(columns) + 2 + 10 * (k % 2))
        ws.add_chart(chart, f"{anchor_col}{1 + 16 * (k // 2)}")
    return ws


# ---------------------------------------------------------------------------------------------
# The workbook
# ---------------------------------------------------------------------------------------------


def build_workbook(outputs: MhisOutputs, path: Path) -> Path:
    """Write ``mhis_<YYYY-MM>.xlsx``: Summary, Spend vs target, Exclusions, Activity, Team unit
    costs, LTP metrics, LTP monthly, LTP trajectory, Sources."""
    wb = Workbook()
    summary_sheet(wb, outputs)
    data_sheet(
        wb,
        "Spend vs target",
        [
            Col("mhis_category", "MHIS category"),
            Col("category_name", "Category"),
            Col("in_mhis_scope", "In MHIS scope"),
            Col("prior_year_mhis_outturn_gbp", "Prior-year MHIS outturn", "money"),
            Col("target_gbp", "Indicative target", "money"),
            Col("ytd_mhis_spend_gbp", "YTD MHIS spend", "money"),
            Col("ytd_target_gbp", "YTD target", "money"),
            Col("ytd_variance_gbp", "YTD variance", "money"),
            Col("forecast_outturn_gbp", "Forecast outturn", "money"),
            Col("forecast_variance_gbp", "Forecast variance", "money"),
            Col("ytd_spend_gbp", "YTD spend (all funding)", "money"),
            Col("ytd_excluded_gbp", "YTD excluded", "money"),
        ],
        outputs.categories,
    )
    data_sheet(
        wb,
        "Exclusions",
        [
            Col("exclusion_reason", "Exclusion reason"),
            Col("mhis_category", "MHIS category"),
            Col("ytd_excluded_gbp", "YTD excluded", "money"),
            Col("prior_year_excluded_gbp", "Prior-year excluded", "money"),
        ],
        outputs.exclusions,
    )
    data_sheet(
        wb,
        "Activity",
        [
            Col("mhis_category", "MHIS category"),
            Col("category_name", "Category"),
            Col("window_start", "Window start", "date"),
            Col("window_end", "Window end", "date"),
            Col("spend_gbp", "Spend, 12 months", "money"),
            Col("contacts", "Attended contacts", "count"),
            Col("people_in_contact", "People in contact", "count"),
            Col("referrals", "Referrals received", "count"),
            Col("spend_per_contact_gbp", "Spend per contact", "money_p"),
            Col("spend_per_person_gbp", "Spend per person", "money_p"),
            Col("note", "Note"),
        ],
        outputs.activity,
    )
    data_sheet(
        wb,
        "Team unit costs",
        [
            Col("cost_centre", "Cost centre"),
            Col("service_line", "Service line"),
            Col("team_local_id", "Team"),
            Col("mhis_category", "MHIS category (spend)"),
            Col("activity_mhis_category", "MHIS category (activity)"),
            Col("spend_gbp", "Spend, 12 months", "money"),
            Col("contacts", "Attended contacts", "count"),
            Col("people_in_contact", "People in contact", "count"),
            Col("referrals", "Referrals received", "count"),
            Col("spend_per_contact_gbp", "Spend per contact", "money_p"),
            Col("spend_per_person_gbp", "Spend per person", "money_p"),
        ],
        outputs.teams,
    )
    data_sheet(
        wb,
        "LTP metrics",
        [
            Col("metric_id", "Metric"),
            Col("metric_name", "Definition"),
            Col("window_start", "Window start", "date"),
            Col("window_end", "Window end", "date"),
            Col("months_available", "Months published", "int"),
            Col("value", "Value", "count"),
            Col("unit", "Unit"),
            Col("trajectory", "Trajectory (scaled)", "decimal"),
            Col("trajectory_financial_year", "Trajectory year"),
            Col("trajectory_local_value", "Local trajectory", "decimal"),
            Col("pct_of_trajectory", "% of trajectory", "pct"),
            Col("status", "Status", "status"),
            Col("caveat", "Caveat"),
            Col("window_months", "Window (months)", "int"),
            Col("nhs_england_source", "NHS England source (menh_bbrb/notebooks)"),
        ],
        metric_display(outputs.metrics),
    )
    data_sheet(
        wb,
        "LTP monthly",
        [
            Col("metric_id", "Metric"),
            Col("period", "Month", "month"),
            Col("window_start", "Window start", "date"),
            Col("window_end", "Window end", "date"),
            Col("months_available", "Months published in window", "int"),
            Col("value", "Value over the measure's window", "count"),
            Col("trajectory", "Trajectory (scaled)", "decimal"),
            Col("status", "Status", "status"),
        ],
        outputs.series,
    )
    trajectory_sheet(wb, outputs)
    data_sheet(
        wb,
        "Sources",
        [
            Col("kind", "Source"),
            Col("period", "Month", "month"),
            Col("status", "Status"),
            Col("version", "Version"),
            Col("run_id", "Run"),
            Col("code_version", "Code version"),
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
