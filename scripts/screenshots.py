"""Full-page screenshots of a published month's HTML outputs, for the README and docs.

    .venv/bin/python scripts/screenshots.py output/2026-10 [--out docs/images]

Opens each page in Debian's headless Chromium with the network cut off (the same browser and
blocking as the Data Docs browser test: ``mhsds_pipeline.browser``), so a screenshot shows
what a reader on an offline machine sees. Writes, for the pages the month has:

    data_docs.png         data_docs/index.html (validation results of every suite)
    data_docs_failed.png  the first validation result page (by path) with a failed expectation
    ig_page.png           dq/index.html (IG summary: rules that fired, rows affected)
    dqmi_report.png       dq/dqmi_report.html
    mhis_report.png       mhis/mhis_report.html

Exits 1 if a page tried to reach the network, logged a console error or loaded a missing file
(the screenshot would not be what an offline reader sees).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from mhsds_pipeline.browser import chromium_path, offline_browser  # noqa: E402

#: GX's validation page header: "Status: <red cross> Failed".
FAILED_STATUS = re.compile(r"Status:</span>\s*<i[^>]*\bfa-times\b[^>]*>\s*</i>\s*Failed")


def failed_result_page(docs: Path) -> Path | None:
    """The first validation result page, in path order, whose suite failed."""
    for page in sorted((docs / "validations").rglob("*.html")):
        if FAILED_STATUS.search(page.read_text(encoding="utf-8", errors="replace")):
            return page
    return None


def targets(period_dir: Path) -> dict[str, Path | None]:
    docs = period_dir / "data_docs"
    return {
        "data_docs.png": docs / "index.html",
        "data_docs_failed.png": failed_result_page(docs) if docs.is_dir() else None,
        "ig_page.png": period_dir / "dq" / "index.html",
        "dqmi_report.png": period_dir / "dq" / "dqmi_report.html",
        "mhis_report.png": period_dir / "mhis" / "mhis_report.html",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("period_dir", type=Path, help="a published month, e.g. output/2026-10")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    period_dir = args.period_dir.absolute()  # output/<YYYY-MM> is a symlink: keep its name
    if not period_dir.is_dir():
        parser.error(f"{period_dir} is not a directory (a published month, e.g. output/2026-10)")
    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    print(f"Chromium: {chromium_path()}")
    with offline_browser(width=args.width) as browser:
        page = browser.page
        for name, source in targets(period_dir).items():
            if source is None or not source.is_file():
                print(f"  skipped {name}: {source or 'no failed validation result'} not in this month")
                continue
            before = len(browser.blocked), len(browser.console_errors), len(browser.failed_requests)
            page.goto(source.as_uri(), wait_until="load")
            if name == "data_docs.png":  # bootstrap-table fills the results table from JavaScript
                page.locator("table[data-toggle=table] tbody tr").first.wait_for(timeout=10_000)
            page.wait_for_timeout(300)  # icon fonts and charts settle
            page.screenshot(path=str(args.out / name), full_page=True)
            print(f"  {args.out / name}  <- {source.relative_to(period_dir)}")
            after = len(browser.blocked), len(browser.console_errors), len(browser.failed_requests)
            if after != before:
                problems.append(
                    f"{source}: blocked {browser.blocked[before[0] :]}, console errors "
                    f"{browser.console_errors[before[1] :]}, missing {browser.failed_requests[before[2] :]}"
                )
    for problem in problems:
        print(f"WARNING {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
