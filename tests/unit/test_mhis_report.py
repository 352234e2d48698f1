"""The finance-facing MHIS report on a small hand-built ``MhisOutputs``: the workbook's native
charts, conditional colours, number formats, dates, tables and widths; the HTML page's static
SVG charts, one unit for money, status words and autoescape."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from mhsds_pipeline.finance.report import STATUS_TEXT, MhisOutputs, gbp_m, millions_dp
from mhsds_pipeline.finance.report_html import build_html, render_html
from mhsds_pipeline.finance.workbook import build_workbook

pytestmark = pytest.mark.unit

D = Decimal
PERIOD = "2026-10"
MONTHS = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]  # 2026-07 not published
EVIL = "Crisis <b>care</b>"


def _position(fy: str, meets: bool, basis: str) -> dict:
    return {
        "financial_year": fy,
        "basis": basis,
        "months_with_ledger_data": 7 if basis == "ytd_forecast" else 12,
        "ledger_months_missing": "",
        "rule_version": f"MHIS-{fy.replace('/', '-')}",
        "comparison": "gte",
        "baseline_outturn_gbp": D("4589571.00"),
        "base_growth_pct": 3.34,
        "additional_uplift_pct": 0.0,
        "prior_year_shortfall_gbp": D("0"),
        "calculated_target_gbp": D("4742862.67"),
        "nhse_target_gbp": None,
        "target_gbp": D("4742862.67"),
        "target_basis": "calculated",
        "ytd_mhis_spend_gbp": D("2773854.59"),
        "ytd_target_gbp": D("2766669.89"),
        "ytd_variance_gbp": D("7184.70"),
        "forecast_outturn_gbp": D("4755179.30"),
        "forecast_variance_gbp": D("12316.63") if meets else D("-14696.88"),
        "mhis_growth_pct": 3.608,
        "meets_standard": meets,
    }


def _category(code: str, name: str, spend: str, target: str | None, scope: bool = True) -> dict:
    return {
        "period": PERIOD,
        "financial_year": "2026/27",
        "mhis_category": code,
        "category_name": name,
        "short_name": name,
        "in_mhis_scope": scope,
        "prior_year_outturn_gbp": D("1000000.00"),
        "prior_year_mhis_outturn_gbp": D("900000.00"),
        "target_gbp": None if target is None else D(target) * 2,
        "ytd_spend_gbp": D(spend),
        "ytd_mhis_spend_gbp": D(spend) if scope else D("0"),
        "ytd_excluded_gbp": D("0.00"),
        "ytd_target_gbp": None if target is None else D(target),
        "ytd_variance_gbp": None if target is None else D(spend) - D(target),
        "forecast_outturn_gbp": D(spend) * 2,
        "forecast_variance_gbp": None,
    }


def _metric(metric_id: str, status: str, value, trajectory) -> dict:
    return {
        "period": PERIOD,
        "metric_id": metric_id,
        "metric_name": f"{metric_id}: a long definition of who is counted over which window, "
        "as NHS England writes it in the measure metadata (12 months rolling)",
        "unit": "people",
        "window_start": date(2025, 11, 1),
        "window_end": date(2026, 10, 31),
        "months_available": 11,
        "window_complete": False,
        "missing_months": "2026-07",
        "value": value,
        "trajectory": trajectory,
        "trajectory_financial_year": "2023/24",
        "trajectory_carried_forward": True,
        "trajectory_local_value": None if trajectory is None else trajectory * 100,
        "trajectory_scale": 0.01,
        "direction": "at_least",
        "local_measure": "",
        "pct_of_trajectory": None
        if trajectory is None or value is None
        else round(100 * value / trajectory, 1),
        "status": status,
        "caveat": "",
        "window_months": 12,
        "nhs_england_source": "04_cyp_perinatal/cyp_perinatal_prep.py 3-111",
    }


def _series(metric_id: str, values: list, trajectory: float | None) -> list[dict]:
    rows = []
    for month, value in zip(MONTHS, values, strict=True):
        if month == "2026-07":
            continue  # not published: no row
        first = date.fromisoformat(month + "-01")
        rows.append(
            {
                "metric_id": metric_id,
                "period": month,
                "window_start": first.replace(year=first.year - 1),
                "window_end": first,
                "months_available": 5,
                "window_complete": month == "2026-10",
                "value": value,
                "trajectory": trajectory,
                "status": "met" if month == "2026-10" else "incomplete",
            }
        )
    return rows


@pytest.fixture
def outputs() -> MhisOutputs:
    return MhisOutputs(
        period=PERIOD,
        financial_year="2026/27",
        position=[_position("2025/26", False, "outturn"), _position("2026/27", True, "ytd_forecast")],
        categories=[
            _category("ADULT_COMMUNITY", "Adult community", "797790.44", "799917.36"),
            _category("CRISIS", EVIL, "267270.37", "265505.25"),
            _category("DEMENTIA", "Dementia", "99594.79", None, scope=False),
        ],
        exclusions=[
            {
                "exclusion_reason": "Dementia: outside MHIS",
                "mhis_category": "DEMENTIA",
                "category_name": "Dementia",
                "ytd_excluded_gbp": D("99594.79"),
                "prior_year_excluded_gbp": D("159084.71"),
            }
        ],
        activity=[
            {
                "period": PERIOD,
                "window_start": date(2025, 11, 1),
                "window_end": date(2026, 10, 31),
                "mhis_category": "CRISIS",
                "category_name": EVIL,
                "in_mhis_scope": True,
                "spend_gbp": D("459426.56"),
                "contacts": None,
                "people_in_contact": 25,
                "referrals": 20,
                "spend_per_contact_gbp": None,
                "spend_per_person_gbp": D("18377.06"),
                "has_mhsds_activity": True,
                "note": "spend and activity over the same 11 month(s) with both ledger and published "
                "MHSDS data (2025-11..2026-10); MHSDS months not published: 2026-07",
            }
        ],
        teams=[],
        metrics=[
            _metric("MHS95", "met", 70.0, 62.7),
            _metric("MHS91", "not_met", 10.0, 13.0),
            _metric("MHS108", "incomplete", 35.0, 49.9),
            _metric("SMI_PHC", "not_measurable", None, 43.5),
        ],
        series=_series("MHS95", [None, 50.0, 0, 60.0, 65.0, 70.0], 62.7)
        + _series("MHS91", [5.0, 5.0, 0, 10.0, 10.0, 10.0], 13.0)
        + _series("MHS108", [15.0, 20.0, 0, 30.0, 35.0, 35.0], 49.9),
        sources=[
            {"kind": "MHSDS", "period": m, "status": "missing" if m == "2026-07" else "published"}
            for m in MONTHS
        ]
        + [{"kind": "Finance ledger", "period": "2026-04..2026-10", "status": "complete"}],
        notes=["MHSDS months not published in the 12-month window: 2026-07."],
        trajectory_scale_basis="1% (fixture)",
        code_version="test",
    )


# ---------------------------------------------------------------------------------------------
# Workbook
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def workbook(outputs, tmp_path):
    from openpyxl import load_workbook

    return load_workbook(build_workbook(outputs, tmp_path / f"mhis_{PERIOD}.xlsx"))


def _header(ws) -> dict[str, int]:
    return {c.value: c.column for c in ws[1] if c.value}


def _column(ws, label: str) -> list:
    col = _header(ws)[label]
    return [ws.cell(r, col) for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value is not None]


def test_native_charts_on_the_summary_and_ltp_sheets(workbook):
    from openpyxl.chart import BarChart, LineChart

    summary = workbook["Summary"]._charts
    assert len(summary) == 1 and isinstance(summary[0], BarChart)
    ltp = workbook["LTP trajectory"]._charts
    assert len(ltp) == 3 and all(isinstance(c, LineChart) for c in ltp)  # MHS95, MHS91, MHS108
    assert all(len(c.series) == 2 for c in ltp)  # the series and its trajectory
    assert ltp[0].display_blanks == "gap"  # a suppressed or unpublished month is a gap, not zero


def test_status_cells_are_coloured_by_conditional_formatting(workbook):
    for sheet, label in (("LTP metrics", "Status"), ("LTP monthly", "Status")):
        ws = workbook[sheet]
        letter = _column(ws, label)[0].column_letter
        rules = {
            rule.formula[0]
            for cf in ws.conditional_formatting
            if str(cf.sqref).startswith(f"{letter}2:")
            for rule in cf.rules
        }
        assert {f'{letter}2="Met"', f'{letter}2="Not met"', f'LEFT({letter}2,10)="Incomplete"'} <= rules
        assert all(rule.dxf.fill is not None for cf in ws.conditional_formatting for rule in cf.rules)
    texts = {c.value for c in _column(workbook["LTP metrics"], "Status")}
    assert {"Met", "Not met", STATUS_TEXT["incomplete"], "Not from MHSDS"} == texts
    summary = workbook["Summary"].conditional_formatting
    assert len(list(summary)) == 2  # this year's forecast and last year's final verdict


def test_percentages_are_fractions_with_a_percent_format(workbook):
    summary = {r[0].value: r[1] for r in workbook["Summary"].iter_rows(min_row=2) if r[0].value}
    growth = summary["Programme allocation base growth (%)"]
    assert growth.value == pytest.approx(0.0334) and growth.number_format.endswith("%")
    assert summary["Forecast MHIS growth (%)"].value == pytest.approx(0.03608)
    pct = [c for c in _column(workbook["LTP metrics"], "% of trajectory") if c.value is not None]
    assert pct and all(c.value < 2 and c.number_format == "0.0%" for c in pct)
    assert pct[0].value == pytest.approx(70 / 62.7, abs=1e-3)


def test_dates_are_date_cells_with_a_date_format(workbook):
    for sheet, label in (
        ("LTP metrics", "Window start"),
        ("Activity", "Window end"),
        ("LTP monthly", "Month"),
    ):
        cells = _column(workbook[sheet], label)
        assert cells and all(isinstance(c.value, datetime) and c.is_date for c in cells), sheet
        assert all("yy" in c.number_format for c in cells)
    sources = _column(workbook["Sources"], "Month")
    assert isinstance(sources[0].value, datetime) and sources[-1].value == "2026-04..2026-10"


def test_every_money_cell_has_a_pound_format(workbook):
    summary = [r for r in workbook["Summary"].iter_rows(min_row=2) if r[0].value and "(GBP" in r[0].value]
    assert "Year-to-date target (GBP, flat phasing)" in [r[0].value for r in summary]
    assert all("£" in r[1].number_format for r in summary if isinstance(r[1].value, int | float))
    money = {
        "Spend vs target": ("YTD MHIS spend", "YTD target", "Indicative target", "YTD variance"),
        "Exclusions": ("YTD excluded", "Prior-year excluded"),
        "Activity": ("Spend, 12 months", "Spend per person"),
    }
    for sheet, labels in money.items():
        for label in labels:
            numbers = [c for c in _column(workbook[sheet], label) if isinstance(c.value, int | float)]
            assert numbers and all("£" in c.number_format for c in numbers), (sheet, label)


def test_suppressed_counts_stay_a_star_and_numbers_match_the_rows(workbook, outputs):
    activity = workbook["Activity"]
    assert _column(activity, "Attended contacts")[0].value == "*"
    assert _column(activity, "People in contact")[0].value == 25
    spend = [c.value for c in _column(workbook["Spend vs target"], "YTD MHIS spend")]
    assert spend == [float(c["ytd_mhis_spend_gbp"]) for c in outputs.categories]
    assert workbook["LTP monthly"].max_row == len(outputs.series) + 1


def test_every_data_sheet_is_a_filterable_table_with_a_frozen_header(workbook):
    for ws in workbook:
        if ws.title == "Summary":
            continue
        assert ws.tables, ws.title
        table = next(iter(ws.tables.values()))
        assert table.ref.startswith("A1:") and table.tableStyleInfo.name and table.autoFilter is not None
        assert ws.freeze_panes in ("A2", "B2"), ws.title


def test_columns_fit_long_text_and_wrap_it(workbook):
    ws = workbook["LTP metrics"]
    definition = _column(ws, "Definition")
    letter = definition[0].column_letter
    assert ws.column_dimensions[letter].width > 40
    assert all(c.alignment.wrap_text for c in definition)  # longer than the cap: wraps
    note = _column(workbook["Activity"], "Note")[0]
    assert workbook["Activity"].column_dimensions[note.column_letter].width > 40 and note.alignment.wrap_text


def test_no_status_code_shows_raw(workbook):
    shown = {c.value for ws in workbook for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    assert not shown & {"not_met", "met", "incomplete", "no_trajectory", "not_measurable"}


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Visible text (outside <style>), card values, and every src/href attribute."""

    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.cards: list[str] = []
        self.refs: list[str] = []
        self._in_style = self._in_value = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]
        self._in_style = self._in_style or tag == "style"
        self._in_value = "value" in (a.get("class") or "").split()

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        self._in_value = False

    def handle_data(self, data):
        if not self._in_style:
            self.text.append(data)
        if self._in_value:
            self.cards.append(data.strip())


@pytest.fixture
def page(outputs) -> str:
    return render_html(outputs)


def _parsed(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    p.close()
    return p


def test_page_is_static_and_self_contained(page, outputs, tmp_path):
    parsed = _parsed(page)
    lowered = page.lower()
    assert "<script" not in lowered and "<link" not in lowered and "@import" not in lowered
    assert not [r for r in parsed.refs if r.startswith(("http://", "https://", "//"))]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", lowered)
    uris = set(re.findall(r"https?://[^\"'\s)]*", lowered))
    assert uris <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, uris  # namespaces only
    written = build_html(outputs, tmp_path / "mhis_report.html").read_text(encoding="utf-8")
    assert written == page  # deterministic: the file is the rendering
    assert written == render_html(outputs)


def test_charts_are_inline_svg_with_labels(page):
    svgs = re.findall(r"<svg\b[^>]*>", page)
    assert len(svgs) == 1 + 3  # spend vs target + MHS95, MHS91, MHS108 (SMI_PHC is not from MHSDS)
    assert all('role="img"' in s and "aria-label=" in s for s in svgs)
    assert 'aria-label="MHIS spend against target by category, year to date, £ million"' in page
    assert 'aria-label="MHS95 by month, people (rolling 12 months), against trajectory 62.7"' in page


def _svg_blocks(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


def test_ltp_charts_draw_the_series_and_the_trajectory(page):
    ltp = [s for s in _svg_blocks(page) if "against trajectory" in s[:400]]
    assert len(ltp) == 3
    for svg in ltp:
        assert 'id="mhis-series"' in svg and 'id="mhis-trajectory"' in svg
        assert 'id="mhis-points' in svg  # markers for every month with a value
    spend = next(s for s in _svg_blocks(page) if "spend against target" in s[:400])
    assert 'id="mhis-spend-0"' in spend and 'id="mhis-target-1"' in spend


def test_gaps_are_explained(page):
    text = " ".join(_parsed(page).text)
    assert "suppressed (*, fewer than 5): 2026-05" in text  # MHS95's first month
    assert "not published (shaded): 2026-07" in text


def test_cards_use_one_money_unit(page, outputs):
    cards = _parsed(page).cards
    assert len(cards) == 5 and all(re.fullmatch(r"[+-]?£\d[\d,]*\.\d{3}m", c) for c in cards), cards
    assert millions_dp(outputs.current["target_gbp"]) == 3
    assert gbp_m(outputs.current["target_gbp"], 3) in cards and "+£0.012m" in cards
    assert "k)" not in page  # no £k labels beside £m bars


def test_status_words_come_from_one_mapping(page):
    text = " ".join(_parsed(page).text)
    assert "Not met" in text and "Met" in text and STATUS_TEXT["incomplete"] in text
    assert "not_met" not in text and "no_trajectory" not in text and "not_measurable" not in text


def test_autoescape_keeps_markup_in_data_as_text(page):
    assert "Crisis &lt;b&gt;care&lt;/b&gt;" in page
    assert EVIL not in page
