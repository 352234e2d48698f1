"""What the finance-facing MHIS report shows, and how each kind of value is written.

The workbook (:mod:`.workbook`) and the HTML page (:mod:`.report_html`, charts in
:mod:`.charts`) are built from the same rows as the published Parquet (``MhisOutputs``), so
the numbers in the workbook, the page and the files are the same numbers. Suppressed counts
(null in Parquet) are shown as ``*``. Status words come from one mapping (``STATUS_TEXT``) so
no view shows a raw code such as ``not_met``; money on one view is in one unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

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
# Words
# ---------------------------------------------------------------------------------------------


def status_text(status: str | None) -> str:
    """The one wording of a status code (unknown codes are shown as they are, never dropped)."""
    return "" if status is None else STATUS_TEXT.get(status, status)


def met_status(flag: bool | None) -> str | None:
    """``meets_standard`` as a status code (None when not decided)."""
    return None if flag is None else ("met" if flag else "not_met")


def met_text(flag: bool | None) -> str:
    return status_text(met_status(flag))


def window_text(window_months: int | None) -> str:
    """What one point of a measure covers: 'rolling 12 months', 'rolling 3 months'."""
    return f"rolling {window_months or 12} months"


def unit_label(metric: dict) -> str:
    """A metric's y-axis unit, e.g. 'people (rolling 12 months)'."""
    unit = metric.get("unit") or "value"
    return f"{unit} ({window_text(metric.get('window_months'))})"


def month_date(period: str) -> date | None:
    """``YYYY-MM`` as the first day of that month (None when it is not one month)."""
    try:
        return date.fromisoformat(f"{period}-01")
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------


def gbp(value, dp: int = 0) -> str:
    """Full pounds: ``£1,234`` (``-£1,234`` below zero)."""
    if value is None:
        return ""
    v = float(value)
    sign = "-" if v < 0 else ""
    return f"{sign}£{abs(v):,.{dp}f}"


def millions_dp(reference) -> int:
    """Decimals for £ million on one page, from the size of the MHIS target: enough to show a
    change of about a thousandth of the target (£200m -> 1 dp, £20m -> 2 dp, £5m -> 3 dp)."""
    v = abs(float(reference or 0))
    return 1 if v >= 50e6 else 2 if v >= 5e6 else 3


def gbp_m(value, dp: int = 2, signed: bool = False) -> str:
    """£ million: ``£4.74m`` (``+£0.01m`` with ``signed``)."""
    if value is None:
        return ""
    v = float(value) / 1e6
    sign = "-" if v < 0 and round(v, dp) != 0 else ("+" if signed else "")
    return f"{sign}£{abs(v):,.{dp}f}m"


def count(value) -> str:
    return SUPPRESSION_MARK if value is None else f"{float(value):,.0f}"


def metric_text(value, unit: str | None = None) -> str:
    """A measure value as published: '*' when suppressed, else a whole number (NHS England
    publishes counts rounded to 5 and means rounded to whole days)."""
    if value is None:
        return SUPPRESSION_MARK
    return f"{float(value):,.0f}"


def plain(value) -> str:
    """A trajectory as set (scaled ones keep their decimal: 626.5, not 626)."""
    return "" if value is None else f"{float(value):,.1f}".removesuffix(".0")


def pct(value, dp: int = 1) -> str:
    """A percentage published as a percentage number (3.34 -> '3.34%')."""
    return "" if value is None else f"{float(value):,.{dp}f}%"


def metric_display(rows: list[dict]) -> list[dict]:
    """Metric rows with their display words: status, value ('*' or 'n/a'), trajectory."""
    return [
        dict(
            r,
            status_text=status_text(r["status"]),
            value_text=metric_text(r["value"], r.get("unit")) if r["status"] != "not_measurable" else "n/a",
            trajectory_text=plain(r.get("trajectory")),
        )
        for r in rows
    ]


def months_elapsed(outputs: MhisOutputs) -> int:
    return int(outputs.current["months_with_ledger_data"])


def _excel_value(value):
    """A cell value for the workbook. Text a spreadsheet would run as a formula (a leading =, +,
    -, @; openpyxl would even store "=..." as a formula) gets a leading apostrophe."""
    if isinstance(value, Decimal):
        return float(value)
    return spreadsheet_safe(value)


excel_value = _excel_value
