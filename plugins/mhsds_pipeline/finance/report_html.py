"""The MHIS HTML page: one self-contained file (shared layout and stylesheet, inline SVG charts,
no JavaScript, nothing fetched), rendered by the shared Jinja2 environment with autoescape.

Money in the cards and charts is in £ million, to a number of decimals chosen once for the page
from the size of the target (:func:`report.millions_dp`); the tables below give full pounds and
say so in their headings. Text cells go through ``spreadsheet_safe`` because the tables are
copied from the page into Excel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mhsds_pipeline.finance.charts import spend_vs_target_svg, trajectory_svg
from mhsds_pipeline.finance.report import (
    MhisOutputs,
    count,
    gbp,
    gbp_m,
    met_status,
    metric_display,
    millions_dp,
    months_elapsed,
    pct,
    status_text,
)
from mhsds_pipeline.formats import spreadsheet_safe
from mhsds_pipeline.reports import render, write_html


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""  # "n" numeric, "wrap" long text
    badge: str = ""  # a status code: shown as a badge with STATUS_TEXT wording


@dataclass(frozen=True)
class Table:
    headers: list[tuple[str, bool]]  # (label, numeric)
    rows: list[list[Cell]]


#: column kinds -> how a value is written in a table cell
_NUMERIC = {
    "money": gbp,
    "money_p": lambda v: gbp(v, 2),
    "count": count,
    "pct": lambda v: pct(v, 1),
}


def table(columns: list[tuple[str, str, str | None]], rows: list[dict]) -> Table:
    """``columns`` are (key, label, kind); kind is a numeric kind, 'n' (numeric text as
    published), 'status', 'wrap' or None."""
    body = []
    for r in rows:
        cells = []
        for key, _, kind in columns:
            v = r.get(key)
            if kind in _NUMERIC:
                cells.append(Cell(_NUMERIC[kind](v), "n"))
            elif kind == "n":  # already written as published ('*' when suppressed)
                cells.append(Cell("" if v is None else str(v), "n"))
            elif kind == "status":
                cells.append(Cell(status_text(v), badge=v or ""))
            elif isinstance(v, bool):
                cells.append(Cell("yes" if v else "no"))
            else:
                text = "" if v is None else str(spreadsheet_safe(v))
                cells.append(Cell(text, "wrap" if kind == "wrap" else ""))
        body.append(cells)
    return Table([(label, kind in _NUMERIC or kind == "n") for _, label, kind in columns], body)


def _cards(outputs: MhisOutputs, dp: int) -> list[dict]:
    cur = outputs.current
    variance = cur["forecast_variance_gbp"]
    return [
        {"label": "MHIS target", "value": gbp_m(cur["target_gbp"], dp)},
        {"label": "Forecast outturn", "value": gbp_m(cur["forecast_outturn_gbp"], dp)},
        {
            "label": "Forecast variance to target",
            "value": gbp_m(variance, dp, signed=True),
            "css": "" if variance is None else ("pass" if variance >= 0 else "fail"),
        },
        {"label": "YTD MHIS spend", "value": gbp_m(cur["ytd_mhis_spend_gbp"], dp)},
        {"label": "YTD target (flat phasing)", "value": gbp_m(cur["ytd_target_gbp"], dp)},
    ]


def _rule_text(outputs: MhisOutputs) -> str:
    cur = outputs.current
    uplift = f" + {cur['additional_uplift_pct']:.3f} pts" if cur["additional_uplift_pct"] else ""
    short = " + prior-year shortfall" if cur["prior_year_shortfall_gbp"] else ""
    op = ">" if cur["comparison"] == "gt" else "≥"
    return (
        f"Rule {cur['rule_version']}: target = prior-year MHIS outturn {gbp(cur['baseline_outturn_gbp'])} "
        f"× (1 + {cur['base_growth_pct']:.3f}% base growth{uplift}){short}; compliance when spend {op} "
        f"target (target basis: {cur['target_basis']})."
    )


def context(outputs: MhisOutputs) -> dict:
    """Everything the template shows, as words and markup (no arithmetic in the template)."""
    cur, prior = outputs.current, outputs.prior
    dp = millions_dp(cur["target_gbp"])
    charts = []
    for m in outputs.metrics:
        if m["status"] in ("not_measurable", "no_trajectory"):
            continue
        chart = trajectory_svg(m, outputs.series)
        if chart is not None:
            charts.append(
                {
                    "metric": m,
                    "svg": chart.svg,
                    "gaps": chart.gaps_note,
                    "status": m["status"],
                    "status_text": status_text(m["status"]),
                }
            )
    verdicts = [
        {
            "label": f"Forecast {outputs.financial_year}",
            "status": met_status(cur["meets_standard"]),
            "detail": f"forecast outturn {gbp_m(cur['forecast_outturn_gbp'], dp)} vs target "
            f"{gbp_m(cur['target_gbp'], dp)}; growth {pct(cur['mhis_growth_pct'], 2)}",
        }
    ]
    if prior:
        verdicts.append(
            {
                "label": f"Final {prior['financial_year']}",
                "status": met_status(prior["meets_standard"]),
                "detail": f"outturn {gbp_m(prior['forecast_outturn_gbp'], dp)} vs target "
                f"{gbp_m(prior['target_gbp'], dp)}",
            }
        )
    for v in verdicts:
        v["text"] = status_text(v["status"])
    return {
        "title": f"Mental Health Investment Standard and LTP access — {outputs.period}",
        "subtitle": f"Financial year {outputs.financial_year}; {months_elapsed(outputs)} month(s) of ledger data",
        "footer": f"Code version {outputs.code_version}.",
        "period": outputs.period,
        "rule_text": _rule_text(outputs),
        "verdicts": verdicts,
        "cards": _cards(outputs, dp),
        "millions_dp": dp,
        "spend_chart": spend_vs_target_svg(outputs.categories, dp),
        "categories": table(
            [
                ("category_name", "Category", "wrap"),
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
        "exclusions": table(
            [
                ("exclusion_reason", "Reason", "wrap"),
                ("category_name", "Category", "wrap"),
                ("ytd_excluded_gbp", "YTD", "money"),
                ("prior_year_excluded_gbp", "Prior year", "money"),
            ],
            outputs.exclusions,
        ),
        "ltp_charts": charts,
        "metrics": table(
            [
                ("metric_id", "Metric", None),
                ("metric_name", "Definition", "wrap"),
                ("unit", "Unit", None),
                ("months_available", "Months", None),
                ("value_text", "Value", "n"),
                ("trajectory_text", "Trajectory", "n"),
                ("trajectory_financial_year", "Trajectory year", None),
                ("pct_of_trajectory", "% of trajectory", "pct"),
                ("status", "Status", "status"),
                ("caveat", "Caveat", "wrap"),
                ("nhs_england_source", "NHS England source", "wrap"),
            ],
            metric_display(outputs.metrics),
        ),
        "trajectory_scale_basis": outputs.trajectory_scale_basis,
        "activity": table(
            [
                ("category_name", "Category", "wrap"),
                ("spend_gbp", "Spend", "money"),
                ("contacts", "Attended contacts", "count"),
                ("people_in_contact", "People", "count"),
                ("referrals", "Referrals", "count"),
                ("spend_per_contact_gbp", "£ per contact", "money_p"),
                ("spend_per_person_gbp", "£ per person", "money_p"),
            ],
            outputs.activity,
        ),
        "sources": table(
            [
                ("kind", "Source", None),
                ("period", "Month", None),
                ("status", "Status", None),
                ("version", "Version", None),
            ],
            outputs.sources,
        ),
        "notes": outputs.notes,
    }


def render_html(outputs: MhisOutputs) -> str:
    return render("mhis_report.html", **context(outputs))


def build_html(outputs: MhisOutputs, path: Path) -> Path:
    """Write ``mhis_report.html`` (self-contained: inline CSS and SVG, no JavaScript)."""
    return write_html(path, "mhis_report.html", **context(outputs))
