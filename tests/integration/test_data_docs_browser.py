"""Data Docs as a reader sees them, with no network (issue #14).

A headless Chromium (Debian's, driven by playwright; ``mhsds_pipeline.browser``) opens the
site with every request routed: only ``file:`` and ``data:`` load, anything else is aborted
and recorded. The index must list the suites and their results (bootstrap-table fills that
table from JavaScript), the IG summary link must be there, and a suite with a failed
expectation must show its failure (font-awesome's red cross, styled by Bootstrap) on the index
and on its validation result page. Nothing may be attempted off the machine, and no file the
pages load may be missing.

The site is built by the gate's own code path (``gx_suites._run``: a checkpoint run with the
Airflow run id as its name, ``build_data_docs``, ``make_offline``) over a two-suite DuckDB
warehouse, a few seconds; set ``MHSDS_DATA_DOCS_SITE`` to a published month's ``data_docs/``
to run the same checks on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mhsds_pipeline.browser import chromium_available, chromium_path, offline_browser
from mhsds_pipeline.quality.data_docs import IG_LINK_TARGET, IG_LINK_TEXT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not chromium_available(), reason=f"no Chromium at {chromium_path()} (MHSDS_CHROMIUM overrides)"
    ),
]

RUN_NAME = "manual__2026-11-05T06:00:00+00:00"  # an Airflow run id: colons and a plus in a path
BOOTSTRAP_DANGER = "rgb(220, 53, 69)"  # Bootstrap 4's .text-danger (#dc3545)

ICON_STYLE = """e => {
  const s = getComputedStyle(e), before = getComputedStyle(e, '::before'), box = e.getBoundingClientRect();
  return {color: s.color, font: s.fontFamily, glyph: before.content, width: box.width, height: box.height};
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if os.environ.get("MHSDS_DATA_DOCS_SITE"):
        return Path(os.environ["MHSDS_DATA_DOCS_SITE"])
    import duckdb
    import great_expectations.expectations as gxe

    from mhsds_pipeline.quality import gx_suites

    base = tmp_path_factory.mktemp("data_docs_browser")
    warehouse = base / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE SCHEMA marts; CREATE TABLE marts.mhs101_referral AS "
            "SELECT * FROM (VALUES ('R1', 'SE'), ('R2', NULL), ('R3', 'SE')) t(ServiceRequestId, SourceOfReferralMH)"
        )

    def not_null(column: str, rule: str):
        return gxe.ExpectColumnValuesToNotBeNull(column=column, description=f"{rule}: {column} is present")

    suites = {  # each suite its own expectation objects (GX binds an expectation to one suite)
        "marts__MHS101Referral": (
            "mhs101_referral",
            [not_null("ServiceRequestId", "MHS10101"), not_null("SourceOfReferralMH", "MHS10102")],
        ),
        "marts__MHS001MPI": ("mhs101_referral", [not_null("ServiceRequestId", "MHS10101")]),
    }
    context = gx_suites._context(base / "data_docs")
    datasource = gx_suites._datasource(context, f"duckdb:///{warehouse}")
    result = gx_suites._run(context, datasource, "marts", suites, "browser_test", True, RUN_NAME)
    assert not result.success  # MHS10102 fails on R2
    return base / "data_docs"


def _icon(locator) -> dict:
    assert locator.is_visible()
    return locator.evaluate(ICON_STYLE)


def _assert_failed_icon(style: dict) -> None:
    """font-awesome's cross, in Bootstrap's danger red, drawn at a real size: CSS and font loaded."""
    assert style["color"] == BOOTSTRAP_DANGER, style
    assert "Font Awesome" in style["font"], style
    assert style["glyph"] not in ("none", "normal", '""'), style
    assert style["width"] > 4 and style["height"] > 4, style


def test_data_docs_show_results_and_failures_offline(site: Path):
    with offline_browser() as browser:
        page = browser.page
        page.goto((site / "index.html").as_uri(), wait_until="load")

        rows = page.locator("table[data-toggle=table] tbody tr")
        rows.first.wait_for(state="visible", timeout=10_000)
        assert rows.count() >= 2
        # A month's 61 results fill several table pages: the search box finds MHS101Referral's.
        results = page.locator("#Validation-Results")
        search = results.get_by_placeholder("Search").first
        search.fill("marts__MHS101Referral")
        search.press("Enter")
        suite_link = results.locator(
            "a.ge-index-page-table-expectation-suite-link", has_text="marts__MHS101Referral"
        )
        suite_link.first.wait_for(state="visible", timeout=5_000)
        if not os.environ.get("MHSDS_DATA_DOCS_SITE"):
            assert RUN_NAME in page.inner_text("body")
        assert "__none__" not in page.inner_text("body")
        assert "To continue exploring Great Expectations" not in page.inner_text("body")  # GX's sticky CTA

        ig = page.get_by_role("link", name=IG_LINK_TEXT)
        assert ig.is_visible() and ig.get_attribute("href") == IG_LINK_TARGET

        failed = results.locator(".ge-failed-icon").first  # MHS101Referral fails (MHS10102 here)
        _assert_failed_icon(_icon(failed))
        assert failed.get_attribute("title") == "Failed"
        assert page.evaluate("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")

        failed.click()  # bootstrap-table's row click opens that validation result
        page.wait_for_url("**/validations/**", timeout=10_000)
        page.wait_for_load_state("load")
        assert page.locator("text=Failed").first.is_visible()
        crosses = page.locator("i.fa-times.text-danger")
        assert crosses.count() >= 2  # the page's status line and the failed expectation's row
        _assert_failed_icon(_icon(crosses.last))
        # Bootstrap's stylesheet applies (an unstyled page has no flex navbar or collapsed tables)
        assert page.locator("nav.navbar").first.evaluate("e => getComputedStyle(e).display") == "flex"
        assert (
            page.locator("table.table").first.evaluate("e => getComputedStyle(e).borderCollapse")
            == "collapse"
        )

    assert browser.blocked == [], "the pages tried to reach the network"
    assert browser.failed_requests == [], "files the pages load are missing"
    assert browser.console_errors == []
