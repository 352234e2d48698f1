"""The IG page (``dq/index.html``) from a small synthetic set of check rows and a verdict.

No warehouse: the rows are written with the gate's own ``to_table`` and verdict class, the
Data Docs page and the previous month's published results are planted on disk.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq
import pytest

from mhsds_pipeline.quality.ig_page import (
    IG_PAGE,
    WITHHELD,
    fired_rules,
    month_on_month,
    write_ig_page,
)
from mhsds_pipeline.quality.results import CheckResult, to_table
from mhsds_pipeline.quality.rules import load_catalogue
from mhsds_pipeline.quality.verdict import BlockingCheck, GateVerdict

pytestmark = pytest.mark.unit

PERIOD = "2026-10"
PREVIOUS = "2026-09"
NHS_NUMBER = "9434765918"  # a valid-looking NHS number: must never reach the page
RUN = "manual__2026-11-05T09:00:00+00:00"


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def _rule(catalogue, rule_id: str, status: str, n: int | None, **fields) -> CheckResult:
    rule = catalogue.rule(rule_id)
    return rule.result(status, numerator=n, count_rule_engine=n, count_gx=n, engines_agree=True, **fields)


def _dqmi(
    score: float, before: float | None = None, items: tuple[str, ...] = ("passed", "failed", "not_applicable")
) -> list:
    rows = [
        CheckResult(
            check_id="dqmi.dataset_score",
            source="dqmi",
            severity="info",
            status="failed" if score < 70 else "passed",
            measure="valid",
            rate=score / 100,
            threshold=0.7,
        )
    ]
    if before is not None:
        rows.append(
            CheckResult(
                check_id="dqmi.dataset_score_before_rejections",
                source="dqmi",
                severity="info",
                status="passed",
                measure="valid",
                rate=before / 100,
            )
        )
    rows += [
        CheckResult(check_id=f"dqmi.item{i}", source="dqmi", severity="info", status=s, measure="valid")
        for i, s in enumerate(items)
    ]
    return rows


def _current(catalogue) -> list[CheckResult]:
    return [
        # the NHS number rule, with a sample key and a description a careless engine filled in
        _rule(
            catalogue,
            "MHS00165",
            "failed",
            12,
            sample_keys=[NHS_NUMBER],
            description=f"NHSNumber={NHS_NUMBER} has an incorrect data format",
        ),
        _rule(catalogue, "MHS20142", "failed", 40),  # group rejection, most rows
        _rule(catalogue, "MHS00125", "failed", 300),  # severity 1 warning
        _rule(catalogue, "MHS20143", "passed", 0),
        _rule(catalogue, "MHS00030", "failed", 1),  # header: file rejected
        CheckResult(
            check_id="DBT_TEST_SCRIPT",
            source="dbt",
            suite="not_null_x",
            table_name="MHS101Referral",
            severity="warning",
            status="failed",
            numerator=3,
            description=f"dbt test <script>alert(1)</script> saw {NHS_NUMBER}",
        ),
        CheckResult(
            check_id="volume.rows", source="volume", severity="warning", status="failed", measure="rows"
        ),
        *_dqmi(61.3, before=58.0),
    ]


def _previous(catalogue) -> list[CheckResult]:
    return [
        _rule(catalogue, "MHS00165", "failed", 20),  # down 8
        _rule(catalogue, "MHS00125", "failed", 300),  # unchanged
        _rule(catalogue, "MHS20143", "failed", 5),  # resolved this month
        _rule(catalogue, "MHS20142", "passed", 0),  # newly firing this month
        *_dqmi(59.0),
    ]


def _verdict(catalogue, checks: list[CheckResult]) -> GateVerdict:
    blocking = [c for c in checks if c.blocks and c.status == "failed"]
    return GateVerdict(
        period=PERIOD,
        run_id=RUN,
        status="failed" if blocking else "passed",
        rules_catalogue_version=catalogue.version,
        checks=len(checks),
        warnings=2,
        blocking=tuple(BlockingCheck.of(c) for c in blocking),
        rejected_rows={"MHS001MPI": 12, "MHS201CareContact": 40, "MHS101Referral": 0},
        submitted_rows={"MHS001MPI": 88, "MHS201CareContact": 160, "MHS101Referral": 50},
        dqmi_dataset_score=61.3,
    )


def _run_dir(tmp_path: Path, catalogue, checks: list[CheckResult], docs: bool = True) -> Path:
    dq = tmp_path / "work" / "dq"
    dq.mkdir(parents=True)
    pq.write_table(to_table(PERIOD, RUN, checks), dq / "dq_results.parquet")
    _verdict(catalogue, checks).write(dq)
    (dq / "dqmi_report.html").write_text("<html></html>")
    (dq / "sdcs").mkdir()
    (dq / "sdcs" / "validations.csv").write_text("REPORT_TYPE\n")
    if docs:
        docs_dir = dq.parent / "data_docs"
        page = docs_dir / "validations" / "marts__MHS001MPI" / RUN / "20261105T090000Z" / "batch.html"
        page.parent.mkdir(parents=True)
        page.write_text("<html>MPI</html>")
        (docs_dir / "index.html").write_text("<html>index</html>")
    return dq


def _publish_previous(output: Path, catalogue) -> None:
    dq = output / PREVIOUS / "dq"
    dq.mkdir(parents=True)
    pq.write_table(to_table(PREVIOUS, "earlier", _previous(catalogue)), dq / "dq_results.parquet")


def _rows(table_rows: list[CheckResult]) -> list[dict]:
    return to_table(PERIOD, RUN, table_rows).to_pylist()


def _section(page: str, heading: str) -> str:
    """The HTML from ``<h2>heading`` to the next ``<h2>``."""
    start = page.index(f"<h2>{heading}")
    end = page.find("<h2>", start + 4)
    return page[start : end if end > 0 else None]


def test_fired_rules_sorted_by_consequence_then_rows(catalogue):
    fired = fired_rules(_rows(_current(catalogue)), catalogue)
    assert [f.check_id for f in fired] == ["MHS00030", "MHS20142", "MHS00165", "MHS00125", "DBT_TEST_SCRIPT"]
    by_id = {f.check_id: f for f in fired}
    assert by_id["MHS00030"].consequence == "File rejected"
    assert by_id["MHS20142"].consequence == "Group rejected"
    assert by_id["MHS00165"].consequence == "Record rejected"
    assert by_id["MHS00125"].consequence == "Severity 1 warning"
    assert [(t.table, t.rows) for t in by_id["MHS00165"].tables] == [("MHS001MPI", 12)]
    # the catalogue's message, its <Item> placeholders dropped, never the row's description
    assert by_id["MHS00165"].message == catalogue.rule("MHS00165").text
    assert NHS_NUMBER not in by_id["DBT_TEST_SCRIPT"].message and WITHHELD in by_id["DBT_TEST_SCRIPT"].message


def test_page_shows_verdict_rules_quarantine_dqmi_and_links(tmp_path, catalogue):
    output = tmp_path / "output"
    _publish_previous(output, catalogue)
    dq = _run_dir(tmp_path, catalogue, _current(catalogue))
    path = write_ig_page(dq, output, catalogue)
    assert path == dq / IG_PAGE.name
    page = path.read_text()
    text = html.unescape(page)

    verdict = _section(page, "Gate verdict")
    assert "failed" in verdict and PERIOD in verdict and catalogue.version in verdict
    assert "MHS00030" in verdict and "MHS000Header" in verdict  # the blocking check, described
    assert f"<td>{len(_current(catalogue))}</td>" in verdict  # checks run

    fired = _section(page, "Rules that fired")
    for rule_id, table, n in (
        ("MHS00030", "MHS000Header", 1),
        ("MHS20142", "MHS201CareContact", 40),
        ("MHS00165", "MHS001MPI", 12),
        ("MHS00125", "MHS001MPI", 300),
    ):
        rule = catalogue.rule(rule_id)
        assert rule_id in fired and html.escape(rule.text) in fired, rule_id
        assert f"{table}: {n}" in fired, rule_id
    for consequence in ("File rejected", "Group rejected", "Record rejected", "Severity 1 warning"):
        assert consequence in fired
    assert "MHS20143" not in fired  # passed this month
    # the summary by consequence: rules and rows affected
    summary = fired[fired.index('<table class="ig-summary">') : fired.index("</table>")]
    assert re.search(r'>Group rejected</span></td><td class="n">1</td><td class="n">40</td>', summary)
    assert re.search(r'>Severity 1 warning</span></td><td class="n">1</td><td class="n">300</td>', summary)
    assert re.search(r'>Warning</span></td><td class="n">1</td><td class="n">3</td>', summary)
    assert (
        fired.index("MHS00030") < fired.index("MHS20142") < fired.index("MHS00165") < fired.index("MHS00125")
    )

    # Data Docs links: relative, and each resolves to a file that exists
    hrefs = re.findall(r'href="([^"]+)"', page)
    docs = [h for h in hrefs if h.startswith("../data_docs/validations/")]
    assert docs, "the MHS001MPI rules link to their Data Docs page"
    assert "../data_docs/index.html" in hrefs
    for href in hrefs:
        if href.startswith("http"):
            continue
        assert (dq / unquote(href)).resolve().is_file(), href
    # a table with no Data Docs page has no link
    care_contact = fired[fired.index("MHS201CareContact: 40") :].split("</td>")[0]
    assert "Data Docs" not in care_contact

    quarantine = _section(page, "Quarantine by table")
    assert "MHS201CareContact" in quarantine and '<td class="n">40</td>' in quarantine
    assert "MHS001MPI" in quarantine and "MHS101Referral" not in quarantine  # nothing quarantined there
    assert '<th class="n">52</th>' in quarantine  # total

    dqmi = _section(page, "Data Quality Maturity Index")
    assert "61.3" in dqmi and "58.0" in dqmi and "1 of 2 scored" in dqmi and 'href="dqmi_report.html"' in dqmi

    for link in ("sdcs/validations.csv", "dq_results.parquet", "gate.json", "dqmi_report.html"):
        assert f'href="{link}"' in page, link
    assert "not disclosure-controlled" in text and "must not be published" in text


def test_month_on_month_against_the_previous_published_period(tmp_path, catalogue):
    output = tmp_path / "output"
    _publish_previous(output, catalogue)
    mom = month_on_month(_rows(_current(catalogue)), _rows(_previous(catalogue)), PREVIOUS, catalogue)
    assert mom.available
    assert {(c.check_id, c.table, c.before, c.now) for c in mom.newly_firing} == {
        ("MHS00030", "MHS000Header", 0, 1),
        ("MHS20142", "MHS201CareContact", 0, 40),
        ("DBT_TEST_SCRIPT", "MHS101Referral", 0, 3),
    }
    assert [(c.check_id, c.before, c.now, c.delta) for c in mom.resolved] == [("MHS20143", 5, 0, -5)]
    assert [(c.check_id, c.before, c.now, c.delta) for c in mom.changed] == [("MHS00165", 20, 12, -8)]
    assert mom.unchanged == 1  # MHS00125: 300 both months
    assert (mom.dqmi_before, mom.dqmi_now, mom.dqmi_delta) == (59.0, 61.3, 2.3)

    page = write_ig_page(_run_dir(tmp_path, catalogue, _current(catalogue)), output, catalogue).read_text()
    changes = _section(page, f"What changed since {PREVIOUS}")
    assert "3 rules newly firing" in changes and "1 no longer firing" in changes
    assert "MHS20143" in _section(changes.replace("<h3>", "<h2>"), "No longer firing")
    assert "&minus;8" in changes and "+2.3" in changes


def test_no_previous_month_is_said_plainly(tmp_path, catalogue):
    dq = _run_dir(tmp_path, catalogue, _current(catalogue), docs=False)
    page = write_ig_page(dq, tmp_path / "empty_output", catalogue).read_text()
    changes = _section(page, f"What changed since {PREVIOUS}")
    assert (
        f"No previous month to compare with: there are no published data quality results for {PREVIOUS}"
        in (changes)
    )
    assert "../data_docs/" not in page  # no Data Docs built: no links to them
    assert write_ig_page(dq, None, catalogue).read_text() == page  # no output dir: the same


def test_passed_gate_with_nothing_fired(tmp_path, catalogue):
    checks = [_rule(catalogue, "MHS00165", "passed", 0), *_dqmi(80.0)]
    page = write_ig_page(_run_dir(tmp_path, catalogue, checks), None, catalogue).read_text()
    assert "No blocking check failed: the period may be promoted." in page
    assert "No rule fired this month." in page and "No rows were quarantined." not in page


def test_page_escapes_and_shows_no_identifiers(tmp_path, catalogue):
    output = tmp_path / "output"
    _publish_previous(output, catalogue)
    page = write_ig_page(_run_dir(tmp_path, catalogue, _current(catalogue)), output, catalogue).read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert NHS_NUMBER not in page and not re.search(r"(?<!\d)\d{10}(?!\d)", page)
    assert "<LocalPatientID>" not in page and "&lt;LocalPatientID&gt;" not in page  # no value placeholders
    assert "/work/" not in page and str(tmp_path) not in page  # no local paths
