"""The information governance page of a run: ``dq/index.html``.

One page answering "which rules rejected how many rows, and why" before anything is uploaded,
so a reviewer need not open ~61 Data Docs pages and ``gate.json``. It is built only from what the
gate already wrote into the run's ``dq/`` directory (``gate.json`` through
:class:`~.verdict.GateVerdict`, ``dq_results.parquet``), the GX Data Docs beside it and the
previous period's published ``dq_results.parquet``; the rules catalogue supplies each rule's
consequence and message, so the page never restates a rule.

Privacy: the page shows counts, rule codes and the catalogue's messages only. It never reads the
``sample_keys`` column, never fills a message's ``<Item>`` placeholders with values and withholds
anything shaped like an NHS number in a free-text description. The counts are exact operational
counts for the review, not disclosure-controlled statistics, and the page says so.

Links are relative (``../data_docs/...``), so they resolve both in the run's work directory and
in the published ``output/<period>/`` copy.
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow.parquet as pq

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.results import SEVERITIES
from mhsds_pipeline.quality.rules import Catalogue, load_catalogue
from mhsds_pipeline.quality.verdict import GATE_FILE, GateVerdict, VerdictError
from mhsds_pipeline.reports import write_html

__all__ = [
    "IG_PAGE",
    "FiredRule",
    "MonthOnMonth",
    "RuleChange",
    "fired_rules",
    "ig_context",
    "month_on_month",
    "write_ig_page",
]

log = logging.getLogger(__name__)

#: Where the page sits in a quality work directory and in a published version.
IG_PAGE = Path("dq") / "index.html"
RESULTS_FILE = "dq_results.parquet"

#: Checks a reviewer reads as "rules": row-level violations. DQMI items have their own section
#: and report; volume checks compare row counts, not rows affected.
_NOT_RULES = ("dqmi", "volume")

#: NHS-number-shaped text (10 digits, optionally spaced 3-3-4): never shown, whatever field holds it.
_NHS_NUMBER_LIKE = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
WITHHELD = "[withheld]"

_BADGE = {
    "file rejected": "fail",
    "group rejected": "rejected",
    "record rejected": "rejected",
    "severity 1 warning": "warning",
    "warning": "warning",
    "info": "info",
}


def _withhold(text: str | None) -> str:
    return _NHS_NUMBER_LIKE.sub(WITHHELD, text or "")


def consequence(severity: str) -> str:
    """NHS England's words for a severity: ``Record rejected``, ``Severity 1 warning``..."""
    return severity[:1].upper() + severity[1:]


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int | None
    docs_href: str | None = None  # relative link to the Data Docs result page


@dataclass(frozen=True)
class FiredRule:
    """A check that failed (or could not be evaluated), with its rows affected per table."""

    check_id: str
    severity: str
    status: str  # failed / error
    message: str
    tables: tuple[TableCount, ...]

    @property
    def consequence(self) -> str:
        return consequence(self.severity)

    @property
    def badge(self) -> str:
        return _BADGE.get(self.severity, "info")

    @property
    def rows(self) -> int:
        return sum(t.rows or 0 for t in self.tables)


@dataclass(frozen=True)
class RuleChange:
    check_id: str
    table: str
    severity: str
    message: str
    before: int
    now: int

    @property
    def consequence(self) -> str:
        return consequence(self.severity)

    @property
    def delta(self) -> int:
        return self.now - self.before


@dataclass(frozen=True)
class MonthOnMonth:
    previous_period: str
    available: bool
    newly_firing: tuple[RuleChange, ...] = ()
    resolved: tuple[RuleChange, ...] = ()
    changed: tuple[RuleChange, ...] = ()  # firing both months, rows affected changed
    unchanged: int = 0  # firing both months with the same rows affected
    dqmi_before: float | None = None
    dqmi_now: float | None = None

    @property
    def dqmi_delta(self) -> float | None:
        if self.dqmi_before is None or self.dqmi_now is None:
            return None
        return round(self.dqmi_now - self.dqmi_before, 1)


# ------------------------------------------------------------------------------ rules that fired


def _is_rule(row: Mapping[str, Any]) -> bool:
    return row.get("source") not in _NOT_RULES and row.get("measure", "violations") == "violations"


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _message(check_id: str, row: Mapping[str, Any], catalogue: Catalogue) -> str:
    """The catalogue's message (values never filled in); other checks: their description, with
    anything NHS-number-shaped withheld."""
    try:
        return catalogue.rule(check_id).text
    except KeyError:
        return _withhold(row.get("description"))


def docs_page(data_docs: Path | None, suite: str | None) -> str | None:
    """Relative link (from ``dq/``) to the suite's Data Docs validation result page, if built."""
    if data_docs is None or not suite:
        return None
    pattern = str(data_docs / "validations" / glob.escape(suite) / "**" / "*.html")
    pages = sorted(glob.glob(pattern, recursive=True))
    if not pages:
        return None
    rel = Path(pages[-1]).relative_to(data_docs).as_posix()
    return "../data_docs/" + quote(rel, safe="/")


def fired_rules(
    rows: Iterable[Mapping[str, Any]], catalogue: Catalogue, data_docs: Path | None = None
) -> list[FiredRule]:
    """Every rule that failed or could not be evaluated, most severe first, then most rows."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if _is_rule(row) and row.get("status") in ("failed", "error"):
            grouped.setdefault(str(row["check_id"]), []).append(row)
    fired = []
    for check_id, group in grouped.items():
        group.sort(key=lambda r: str(r.get("table_name") or ""))
        severity = min((str(r["severity"]) for r in group), key=_severity_rank)
        tables = tuple(
            TableCount(
                str(r.get("table_name") or "-"),
                r.get("numerator"),
                docs_page(data_docs, r.get("suite")),
            )
            for r in group
        )
        status = "error" if any(r.get("status") == "error" for r in group) else "failed"
        fired.append(FiredRule(check_id, severity, status, _message(check_id, group[0], catalogue), tables))
    fired.sort(key=lambda f: (_severity_rank(f.severity), -f.rows, f.check_id))
    return fired


# ------------------------------------------------------------------------------ month on month


def _firing(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[str, int, Mapping]]:
    """(rule, table) -> (severity, rows affected, row) for the rules that failed."""
    out = {}
    for row in rows:
        if _is_rule(row) and row.get("status") == "failed":
            key = (str(row["check_id"]), str(row.get("table_name") or "-"))
            out[key] = (str(row["severity"]), int(row.get("numerator") or 0), row)
    return out


def dqmi_score(rows: Iterable[Mapping[str, Any]], check_id: str = "dqmi.dataset_score") -> float | None:
    """A DQMI data set score (0-100) from its dq_results row."""
    for row in rows:
        if row.get("check_id") == check_id and row.get("rate") is not None:
            return round(float(row["rate"]) * 100, 1)
    return None


def month_on_month(
    current: list[Mapping[str, Any]],
    previous: list[Mapping[str, Any]] | None,
    previous_period: str,
    catalogue: Catalogue,
) -> MonthOnMonth:
    """What changed since the previous period's published results (``previous`` None: none)."""
    if previous is None:
        return MonthOnMonth(previous_period, available=False, dqmi_now=dqmi_score(current))
    now, before = _firing(current), _firing(previous)

    def change(key: tuple[str, str]) -> RuleChange:
        sev, n_now, row = now.get(key, (None, 0, None))
        sev_b, n_before, row_b = before.get(key, (None, 0, None))
        row = row or row_b
        return RuleChange(
            key[0], key[1], sev or sev_b or "info", _message(key[0], row, catalogue), n_before, n_now
        )

    def ordered(keys: Iterable[tuple[str, str]]) -> tuple[RuleChange, ...]:
        changes = [change(k) for k in keys]
        changes.sort(key=lambda c: (_severity_rank(c.severity), -abs(c.delta), c.check_id, c.table))
        return tuple(changes)

    both = now.keys() & before.keys()
    moved = [k for k in both if now[k][1] != before[k][1]]
    return MonthOnMonth(
        previous_period,
        available=True,
        newly_firing=ordered(now.keys() - before.keys()),
        resolved=ordered(before.keys() - now.keys()),
        changed=ordered(moved),
        unchanged=len(both) - len(moved),
        dqmi_before=dqmi_score(previous),
        dqmi_now=dqmi_score(current),
    )


def previous_results(output_dir: Path | None, period: str) -> tuple[str, list[dict] | None]:
    """The previous period and its published dq_results rows (None when it has none)."""
    prev = str(ReportingPeriod.parse(period).shift(-1))
    if output_dir is None:
        return prev, None
    path = Path(output_dir) / prev / "dq" / RESULTS_FILE
    if not path.is_file():
        return prev, None
    return prev, _read_rows(path)


def _read_rows(path: Path) -> list[dict]:
    table = pq.read_table(path)
    # sample_keys (pseudonymised keys of failing rows) are never read into the page.
    wanted = [c for c in table.column_names if c != "sample_keys"]
    return table.select(wanted).to_pylist()


# ------------------------------------------------------------------------------ the page


def ig_context(
    verdict: GateVerdict,
    rows: list[Mapping[str, Any]],
    catalogue: Catalogue,
    dq_dir: Path,
    previous_period: str,
    previous: list[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """Everything the template shows; counts, codes and messages only."""
    dq_dir = Path(dq_dir)
    data_docs = dq_dir.parent / "data_docs"
    docs_index = "../data_docs/index.html" if (data_docs / "index.html").is_file() else None
    dqmi_href = "dqmi_report.html" if (dq_dir / "dqmi_report.html").is_file() else None
    sdcs = [f"sdcs/{quote(p.name)}" for p in sorted((dq_dir / "sdcs").glob("*.csv"))]
    fired = fired_rules(rows, catalogue, data_docs if data_docs.is_dir() else None)
    quarantine = sorted(
        (
            (t, n, verdict.submitted_rows.get(t))
            for t, n in verdict.rejected_rows.items()
            if n  # tables with nothing quarantined are not listed
        ),
        key=lambda x: (-x[1], x[0]),
    )
    dqmi_items = [r for r in rows if r.get("source") == "dqmi" and r.get("measure") == "valid"]
    dataset_row = next((r for r in dqmi_items if r.get("check_id") == "dqmi.dataset_score"), None)
    items = [r for r in dqmi_items if not str(r.get("check_id", "")).startswith("dqmi.dataset_score")]
    items = [r for r in items if r.get("check_id") != "dqmi.snomed_ct_coverage"]
    items = [r for r in items if r.get("status") in ("passed", "failed")]  # scored items only
    links = [("Data Docs", docs_index)] if docs_index else []
    links += [("DQMI report", dqmi_href)] if dqmi_href else []
    links += [("dq_results.parquet", RESULTS_FILE), ("gate.json", GATE_FILE.name)]
    return {
        "title": f"MHSDS data quality for information governance: {verdict.period}",
        "subtitle": f"Quality gate {verdict.status} · run {verdict.run_id} · "
        f"rules catalogue {verdict.rules_catalogue_version}",
        "links": links,
        "footer": "Exact operational counts for information governance review: not disclosure-controlled, "
        "not for publication. ",
        "verdict": verdict,
        "blocking": [
            {
                "check_id": b.check_id,
                "table": b.table or "-",
                "status": "could not be evaluated" if b.status == "error" else b.status,
                "count": b.count,
                "message": _message(b.check_id, {"description": b.description}, catalogue),
            }
            for b in verdict.blocking
        ],
        "fired": fired,
        "by_consequence": [
            (consequence(sev), _BADGE[sev], len(group), sum(f.rows for f in group))
            for sev in SEVERITIES
            if (group := [f for f in fired if f.severity == sev])
        ],
        "quarantine": quarantine,
        "quarantine_total": sum(verdict.rejected_rows.values()),
        "submitted_total": sum(verdict.submitted_rows.values()),
        "dqmi": {
            "score": verdict.dqmi_dataset_score,
            "before": dqmi_score(rows, "dqmi.dataset_score_before_rejections"),
            "target": None
            if dataset_row is None or dataset_row.get("threshold") is None
            else round(float(dataset_row["threshold"]) * 100),
            "item_count": len(items),
            "below_target": sum(1 for r in items if r.get("status") == "failed"),
            "href": dqmi_href,
        },
        "mom": month_on_month(
            list(rows), None if previous is None else list(previous), previous_period, catalogue
        ),
        "docs_index": docs_index,
        "sdcs": sdcs,
        "files": {"results": RESULTS_FILE, "gate": GATE_FILE.name},
    }


def write_ig_page(dq_dir: Path, output_dir: Path | None = None, catalogue: Catalogue | None = None) -> Path:
    """Write ``dq_dir/index.html`` from the gate's verdict and results already in ``dq_dir``.

    ``output_dir``: the published outputs (``settings.output_dir``), read for the previous
    period's ``dq_results.parquet``; None compares with nothing.
    """
    dq_dir = Path(dq_dir)
    try:
        verdict = GateVerdict.read(dq_dir / GATE_FILE.name)
    except (OSError, VerdictError) as exc:
        raise VerdictError(f"cannot write the IG page without the gate's verdict: {exc}") from exc
    rows = _read_rows(dq_dir / RESULTS_FILE)
    catalogue = catalogue or load_catalogue()
    prev, previous = previous_results(output_dir, verdict.period)
    ctx = ig_context(verdict, rows, catalogue, dq_dir, prev, previous)
    path = write_html(dq_dir / IG_PAGE.name, "ig_page.html", **ctx)
    log.info(
        "IG page for %s: %d rules fired, %d rows quarantined (%s)",
        verdict.period,
        len(ctx["fired"]),
        ctx["quarantine_total"],
        "compared with " + prev if previous is not None else f"no published {prev} to compare with",
    )
    return path
