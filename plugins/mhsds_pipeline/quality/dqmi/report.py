"""DQMI outputs: ``dqmi.parquet`` for machines and ``dqmi_report.html`` for information governance.

Writing and presentation only: the Parquet rows and key-value summary, the self-contained HTML
report, optional disclosure control of the counts, and atomic, deterministic writes (same result,
same bytes). Every number shown comes from a :class:`~.scoring.DqmiResult`; nothing is scored or
counted here. Tables are named by their IDB names (``MHS001MPI``, each item's ``idb_table``),
never by warehouse relation names, and the report shows readers no developer notes: the seed's
provenance notes lose their source tags and file references (:func:`readable_source`).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from mhsds_pipeline.privacy import SUPPRESSION_MARK, disclosure_control
from mhsds_pipeline.quality.dqmi.items import (
    CATEGORIES,
    CATEGORY_MEANING,
    POPULATIONS,
    RULES_INTEGRITY,
    DqmiItem,
)
from mhsds_pipeline.quality.dqmi.scoring import DqmiResult, VodimCounts, _fmt, on_the_hour_pct

# The package's single logger, under the name the one-module dqmi.py logged as.
log = logging.getLogger(__package__)

#: Where the method comes from, printed in the report and the Parquet metadata. (Developer
#: provenance: sources S4, S10-S13, S16, S17 of the project's DQMI digest, dqmi_snomed.md Part A.)
METHOD_SOURCE: Final[str] = (
    "NHS Digital, Data Quality Maturity Index (DQMI) methodology and its Appendix 1 (example of a "
    "DQMI calculation); NHS Digital's Mental Health Services Data Set data quality rules (the VODIM "
    "measures of the Mental Health Monthly Statistics code and its DQMI extracts); NHS England's "
    "MHSDS Data Quality dashboard and Mental Health Core Data Pack targets"
)


# ============================================================================================
# dqmi.parquet
# ============================================================================================


DQMI_PARQUET_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("period", pa.string(), nullable=False),
        pa.field("method_version", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("data_item", pa.string()),
        pa.field("data_item_uid", pa.string()),
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("column_name", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("population", pa.string(), nullable=False),
        pa.field("valid", pa.int64()),
        pa.field("other", pa.int64()),
        pa.field("default", pa.int64()),
        pa.field("invalid", pa.int64()),
        pa.field("missing", pa.int64()),
        pa.field("total", pa.int64()),
        pa.field("valid_and_complete", pa.int64()),
        pa.field("default_threshold_pct", pa.float64()),
        pa.field("defaults_allowed", pa.float64()),
        pa.field("defaults_in_excess", pa.float64()),
        pa.field("item_score", pa.float64()),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("met_threshold", pa.bool_()),
        pa.field("coverage", pa.float64(), nullable=False),
        pa.field("included_in_score", pa.bool_(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("disclosure_controlled", pa.bool_(), nullable=False),
        pa.field("error", pa.string()),
    ]
)


def _count_out(n: int | None, controlled: bool) -> int | None:
    if n is None:
        return None
    return disclosure_control(n) if controlled else n


def _parquet_rows(result: DqmiResult, controlled: bool) -> list[dict]:
    rows = []
    for r in result.items:
        c = r.counts
        rows.append(
            {
                "period": result.period,
                "method_version": result.method_version,
                "item_id": r.item.item_id,
                "data_item": r.item.data_item,
                "data_item_uid": r.item.data_item_uid,
                "table_name": r.item.idb_table,
                "column_name": r.item.column_name,
                "rule": r.item.rule,
                "population": r.item.population,
                **{cat: _count_out(None if c is None else getattr(c, cat), controlled) for cat in CATEGORIES},
                "total": _count_out(None if c is None else c.total, controlled),
                "valid_and_complete": _count_out(None if c is None else c.valid_and_complete, controlled),
                "default_threshold_pct": r.item.default_threshold_pct,
                "defaults_allowed": r.defaults_allowed,
                "defaults_in_excess": r.defaults_in_excess,
                "item_score": r.score,
                "threshold": r.item.target_score,
                "met_threshold": r.met_threshold,
                "coverage": r.coverage,
                "included_in_score": r.included,
                "status": r.status,
                "disclosure_controlled": controlled,
                "error": r.error,
            }
        )
    return rows


def _summary(result: DqmiResult) -> dict:
    s = result.snomed
    return {
        "period": result.period,
        "provider": result.provider,
        "submitted": result.submitted,
        "method_version": result.method_version,
        "method_source": METHOD_SOURCE,
        "dataset_score": result.dataset_score,
        "dataset_target": result.dataset_target,
        "dataset_status": result.dataset_status,
        "mean_item_score": result.mean_item_score,
        "mean_coverage": result.mean_coverage,
        "items_scored": len(result.scored_items),
        "coverage_basis": result.coverage_basis,
        "records_basis": result.records_basis,
        "dataset_score_before_rejections": result.score_before_rejections,
        "snomed_ct_coverage": None
        if s is None
        else {
            "attended_contacts": s.attended_contacts,
            "contacts_with_snomed": s.contacts_with_snomed,
            "coverage_pct": s.coverage_pct,
            "target": s.target,
            "status": s.status,
            "error": s.error,
        },
    }


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are read by other users (IG, publisher)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_dqmi(
    result: DqmiResult, out_dir: Path | str, *, disclosure_controlled: bool = False
) -> dict[str, Path]:
    """Write ``out_dir/dqmi.parquet`` (one row per item) and ``out_dir/dqmi_report.html``.

    Both files are deterministic (no timestamps), so re-running a period gives the same bytes,
    and each is written to a temporary file then renamed, so a reader never sees half a file.
    Counts are the provider's own record counts (internal data-quality use); pass
    ``disclosure_controlled=True`` to suppress counts under 5 and round the rest to 5 before
    sharing outside the trust (scores are unchanged: they are not counts). The data set score,
    SNOMED CT coverage and method version are in the Parquet key-value metadata under ``dqmi``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = _summary(result)
    if disclosure_controlled and summary["snomed_ct_coverage"] is not None:
        sn = summary["snomed_ct_coverage"]
        sn["attended_contacts"] = disclosure_control(sn["attended_contacts"])
        sn["contacts_with_snomed"] = disclosure_control(sn["contacts_with_snomed"])
    schema = DQMI_PARQUET_SCHEMA.with_metadata({b"dqmi": json.dumps(summary, sort_keys=True).encode()})
    table = pa.Table.from_pylist(_parquet_rows(result, disclosure_controlled), schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    parquet_path = out / "dqmi.parquet"
    _atomic_write_bytes(parquet_path, sink.getvalue().to_pybytes())
    html_path = out / "dqmi_report.html"
    _atomic_write_bytes(
        html_path, render_dqmi_html(result, disclosure_controlled=disclosure_controlled).encode("utf-8")
    )
    log.info("DQMI %s written to %s (%d items)", result.period, out, len(result.items))
    return {"parquet": parquet_path, "html": html_path}


# --------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------


def _fmt_count(n: int | None, controlled: bool) -> str:
    if n is None:
        return "-"
    shown = disclosure_control(n) if controlled else n
    return SUPPRESSION_MARK if shown is None else f"{shown:,}"


_CSS = """
body{font-family:Arial,Helvetica,sans-serif;color:#212b32;margin:2rem;max-width:1200px}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:2px solid #005eb8}
.sub{color:#4c6272;margin-top:0}.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #d8dde0;border-left:6px solid #005eb8;padding:.8rem 1rem;min-width:12rem}
.card .v{font-size:2rem;font-weight:bold}.card.fail{border-left-color:#d5281b}.card.pass{border-left-color:#007f3b}
table{border-collapse:collapse;width:100%;font-size:.85rem;table-layout:fixed}
th,td{border:1px solid #d8dde0;padding:.3rem .45rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f4f5;overflow-wrap:normal;hyphens:auto}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.items{font-size:.8rem}table.items th{font-size:.75rem}
.passed{color:#007f3b;font-weight:bold}.failed{color:#d5281b;font-weight:bold}.error{color:#d5281b}
tr.grp th{background:#e8edee;font-size:.8rem;text-align:left}
.not_applicable{color:#4c6272}code{background:#f0f4f5;padding:0 .2rem}.small{font-size:.8rem;color:#4c6272}
"""


def render_dqmi_html(result: DqmiResult, *, disclosure_controlled: bool = False) -> str:
    """The human-readable report for information governance: self-contained, counts only."""
    e = html.escape
    score = result.dataset_score
    s = result.snomed
    dc = disclosure_controlled

    def card(label: str, value: str, note: str, status: str | None = None) -> str:
        cls = {"passed": " pass", "failed": " fail"}.get(status or "", "")
        return f'<div class="card{cls}"><div>{e(label)}</div><div class="v">{e(value)}</div><div class="small">{e(note)}</div></div>'

    cards = [
        card(
            "DQMI data set score",
            _fmt(score),
            f"target {_fmt(result.dataset_target, 0)} - {result.dataset_status.replace('_', ' ')}",
            result.dataset_status,
        ),
        card("Mean item score", _fmt(result.mean_item_score), f"{len(result.scored_items)} items with data"),
        *(
            [
                card(
                    "Before rejections",
                    _fmt(result.score_before_rejections),
                    "every built row, including those SDCS would reject: not NHS England's basis",
                )
            ]
            if result.score_before_rejections is not None
            else []
        ),
        card("Mean coverage", _fmt(result.mean_coverage, 2), "submitted / expected"),
    ]
    if s is not None:
        cards.append(
            card(
                "SNOMED CT coverage",
                "-" if s.coverage_pct is None else f"{_fmt(s.coverage_pct)}%",
                f"{_fmt_count(s.contacts_with_snomed, dc)} of {_fmt_count(s.attended_contacts, dc)} attended contacts; "
                f"target {_fmt(s.target, 0)}%",
                s.status,
            )
        )

    item_rows = []
    # Rows grouped by table (seed order within a table), each group under its IDB table name, so
    # a reader finds an item by the table an EPR team maps.
    table_order = list(dict.fromkeys(r.item.idb_table for r in result.items))
    grouped = sorted(result.items, key=lambda r: table_order.index(r.item.idb_table))
    shown_table = None
    for r in grouped:
        if r.item.idb_table != shown_table:
            shown_table = r.item.idb_table
            item_rows.append(f"<tr class='grp'><th colspan='14'>{e(shown_table)}</th></tr>")
        c = r.counts
        cells = [
            f"<td>{e(r.item.data_item)}<br><span class='small'>{_breakable(r.item.item_id)} &middot; "
            f"{e(r.item.data_item_uid)}</span></td>",
            f"<td><code>{e(r.item.idb_table)}.<wbr>{e(r.item.column_name)}</code><br><span class='small'>"
            f"{e(POPULATIONS[r.item.population])}{_on_the_hour_note(r.item, c)}</span></td>",
        ]
        for n in (
            *(None if c is None else getattr(c, cat) for cat in CATEGORIES),
            None if c is None else c.total,
        ):
            cells.append(f"<td class='n'>{_fmt_count(n, dc)}</td>")
        thr = r.item.default_threshold_pct
        cells += [
            f"<td class='n'>{'-' if thr is None else _fmt(thr, 0) + '%'}</td>",
            f"<td class='n'>{_fmt(r.defaults_in_excess)}</td>",
            f"<td class='n'>{_fmt(r.score)}</td>",
            f"<td class='n'>{_fmt(r.item.target_score, 0)}</td>",
            f"<td class='n'>{_fmt(r.coverage, 2)}</td>",
            f"<td class='{e(r.status)}'>{e(r.status.replace('_', ' '))}"
            + (f"<br><span class='small'>{e(r.error)}</span>" if r.error else "")
            + (
                f"<br><span class='small'>{e(r.item.not_applicable_reason or '')}</span>"
                if r.item.not_applicable
                else ""
            )
            + (
                "<br><span class='small'>never populated: check the EPR mapping of this column</span>"
                if c is not None and c.total and c.missing == c.total
                else ""
            )
            + "</td>",
        ]
        item_rows.append("<tr>" + "".join(cells) + "</tr>")

    categories = "".join(
        f"<tr><th>{e(cat.title())}</th><td>{e(CATEGORY_MEANING[cat])}</td></tr>" for cat in CATEGORIES
    )
    rules = "".join(
        f"<tr><td>{e(r.item.data_item)}<br><span class='small'>{_breakable(r.item.item_id)}</span></td>"
        f"<td>{e(r.item.rule.replace('_', ' '))}</td><td>{e(_rule_text(r.item))}</td><td class='small'>"
        f"{e(readable_source(r.item.source))}</td></tr>"
        for r in grouped
    )
    n_na = sum(1 for r in result.items if r.status == "not_applicable")
    n_err = sum(1 for r in result.items if r.status == "error")
    item_count = (
        f"{len(result.items)} data items: {len(result.scored_items)} scored, {n_na} not applicable "
        f"(listed by NHS England but not scored here, or no records to score)"
        + (f", {n_err} not computed" if n_err else "")
        + "."
    )
    snomed_section = ""
    if s is not None:
        snomed_section = f"""
<h2>SNOMED CT coverage</h2>
<p>Distinct attended care contacts (<code>{e(s.table_name)}.AttendStatus</code> in {e(", ".join(s.attended_codes))})
with at least one care activity in <code>{e(s.activity_table)}</code> carrying a valid SNOMED CT concept identifier
(the focus concept of <code>Procedure</code> or <code>Observation</code>, or a <code>Finding</code> in the SNOMED CT
finding scheme; valid = 6-18 digits, concept partition, Verhoeff check digit). Target {_fmt(s.target, 0)}%
(NHS England Mental Health Core Data Pack measure CDP_Q04, SNOMED CT coverage).</p>
<table><tr><th>Attended contacts</th><th>With SNOMED CT</th><th>Coverage</th><th>Status</th></tr>
<tr><td class='n'>{_fmt_count(s.attended_contacts, dc)}</td><td class='n'>{_fmt_count(s.contacts_with_snomed, dc)}</td>
<td class='n'>{"-" if s.coverage_pct is None else _fmt(s.coverage_pct) + "%"}</td>
<td class='{e(s.status)}'>{e(s.status.replace("_", " "))}{"<br>" + e(s.error) if s.error else ""}</td></tr></table>"""

    provider = f" &middot; provider {e(result.provider)}" if result.provider else ""
    dc_note = (
        "Counts are disclosure-controlled: under 5 shown as * and the rest rounded to the nearest 5 "
        "(scores are computed from the exact counts)."
        if dc
        else "Counts are exact record counts of the provider's own submission, for internal data-quality use. "
        "Do not share this copy outside the trust: share a disclosure-controlled copy instead (counts under 5 "
        "suppressed, the rest rounded to the nearest 5)."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>MHSDS DQMI {e(result.period)}</title>
<style>{_CSS}</style></head>
<body>
<h1>MHSDS Data Quality Maturity Index (DQMI) &ndash; {e(result.period)}</h1>
<p class="sub">Local estimate computed in the warehouse{provider}
&middot; method version {e(result.method_version)} &middot; submission header
{"present" if result.submitted else "ABSENT (coverage 0)"}</p>
<p>Records scored: {e(result.records_basis)}.</p>
<div class="cards">{"".join(cards)}</div>

<h2>Data items</h2>
<p>Each record of an item is classed Valid, Other, Default, Invalid or Missing (VODIM). Item score =
(V + O + D &minus; defaults in excess) / records &times; 100, where defaults in excess = max(0, D &minus; default
threshold &times; records). Items with no records are not scored. {e(item_count)}</p>
<table class="items">
<colgroup><col style="width:16%"><col style="width:19%">{'<col style="width:4.5%">' * 6}<col style="width:6%">
<col style="width:6%"><col style="width:5%"><col style="width:4.5%"><col style="width:5.5%"><col></colgroup>
<tr><th>Data item</th><th>Table.column / records counted</th><th>Valid</th><th>Other</th><th>Default</th><th>Invalid</th>
<th>Missing</th><th>Records</th><th>Default threshold</th><th>Defaults in excess</th><th>Item score</th>
<th>Target</th><th>Coverage</th><th>Status</th></tr>
{"".join(item_rows)}
</table>

<h2>What the VODIM categories mean</h2>
<table><colgroup><col style="width:12%"><col></colgroup>{categories}</table>
{snomed_section}
<h2>Method</h2>
<ul>
<li><b>Item score</b> = (valid and complete &minus; defaults in excess) / records &times; 100, valid and complete =
V + O + D (DQMI methodology, Appendix 1; NHS Digital's DQMI extracts).</li>
<li><b>Coverage</b> = submitted / expected. Basis used: {e(result.coverage_basis)}.</li>
<li><b>Data set score</b> = mean item score &times; mean coverage over the {len(result.scored_items)} items with data
(equal weights). Target {_fmt(result.dataset_target, 0)} (NHS England MHSDS DQ dashboard, CDP_Q05).</li>
<li><b>Default thresholds</b>: the published per-item thresholds were not found in public sources; items with
default codes use 0% (every default counts against the score), the conservative choice, until the published
thresholds are found and the item definitions are updated.</li>
<li><b>Time items "(hour)"</b>: NHS Digital's integrity measures count times recorded exactly on the hour (XX:00,
midnight included) among the populated times. How the national DQMI turns that count into an item score is not
published; here a time not on the hour is Valid, one on the hour Invalid, 00:00 (midnight) a Default at a 0%
threshold (so it scores as on the hour but is shown apart) and a blank time Missing, so item score = times
populated and not on the hour / records &times; 100, blanks counting against it as for every other item. The
share on the hour among populated times (NHS Digital's own measure) is shown under each time item.</li>
<li><b>Not reproduced</b>: ODS open/closed status of organisation, site and GP practice codes and ONS postcode
activity (format checks stand in, so a closed organisation's code scores Valid here where NHS England counts it
Other or Invalid); provisional diagnosis date (its table, MHS603, is not part of MHSDS v6: listed as not
applicable); the national DQMI's own coverage table (expected submitters over the previous 7 months).</li>
<li><b>Ward items</b> (ward setting type, intended age group, sex, clinical care intensity, security level,
locked ward): MHSDS v6 records them once per ward (MHS903WardDetails), so each ward counts once; NHS Digital's
rules read them per ward stay.</li>
<li><b>Sources</b>: this method follows {e(METHOD_SOURCE)}.</li>
</ul>
<h2>Item rules</h2>
<table><colgroup><col style="width:16%"><col style="width:11%"><col style="width:38%"><col></colgroup>
<tr><th>Data item</th><th>Rule</th><th>Valid / other / default</th><th>Basis</th></tr>{rules}</table>

<h2>Privacy</h2>
<p>This report holds counts and scores only: no NHS numbers, local patient identifiers, record keys, dates of
birth or postcodes. {e(dc_note)}</p>
</body></html>
"""


def _on_the_hour_note(item: DqmiItem, counts: VodimCounts | None) -> str:
    """Under a time item: NHS Digital's integrity rate (a share, never a count: safe to share)."""
    if item.rule not in RULES_INTEGRITY or counts is None:
        return ""
    pct = on_the_hour_pct(counts)
    return "" if pct is None else f"<br>on the hour: {_fmt(pct)}% of populated times"


def _breakable(identifier: str) -> str:
    """An escaped snake_case id that may wrap after its underscores rather than mid-word."""
    return html.escape(identifier).replace("_", "_<wbr>")


def _rule_text(item: DqmiItem) -> str:
    def show(values: Sequence[str], limit: int = 12) -> str:
        head = ", ".join(values[:limit])
        return head + (f" (+{len(values) - limit} more)" if len(values) > limit else "")

    parts: list[str] = []
    if item.rule in ("code_list", "code_list_first_char"):
        first = " (first character)" if item.rule == "code_list_first_char" else ""
        parts.append(f"valid{first}: {show(item.valid_values)}")
    elif item.rule == "code_shape":
        parts.append(f"valid shapes (A letter, 9 digit): {show(item.valid_values)}")
    elif item.rule == "ods_code":
        lengths = item.ods_code_lengths
        span = (
            " or ".join(map(str, lengths))
            if len(lengths) <= 2
            else f"{min(lengths)} to {max(lengths)}"
            if list(lengths) == list(range(min(lengths), max(lengths) + 1))
            else ", ".join(map(str, lengths))
        )
        parts.append(f"valid: ODS code format, {span} upper-case letters/digits")
    elif item.not_applicable:
        parts.append(f"not scored: {item.not_applicable_reason}")
    elif item.rule == "nhs_number":
        parts.append("valid: 10 digits, Modulus 11 check digit, not a repeated-digit dummy")
    elif item.rule == "birth_date":
        parts.append(f"valid: age at RP end at most {item.rule_arg or 120} and not after RP end")
    elif item.rule == "date_not_before":
        parts.append(f"valid: on or after {item.rule_arg}")
    elif item.rule == "date_in_referral":
        parts.append("valid: on or after referral received date and not after service discharge date")
    elif item.rule == "time_not_on_hour":
        parts.append("valid: a time not on the hour (minutes other than 00); invalid: any other XX:00 time")
    if item.other_values:
        parts.append(f"other: {show(item.other_values)}")
    if item.default_values:
        parts.append(f"default: {show(item.default_values)}")
    return "; ".join(parts)


# Developer provenance in the seed's ``source`` column, not for readers: source tags ("[S10]"),
# bracketed code citations ("[NHSDigital/... integrity.sql L257-272]"), references to the
# project's reference digests ("dqmi_snomed.md A2.3", "(mhsds.md 5.4)").
_SOURCE_TAG = re.compile(r"\s*\[(?:S\d+[a-z]?|[^\]]*\.(?:sql|py)\b[^\]]*)\]")
_DIGEST_REF = re.compile(
    r"\s*\(\s*[\w.-]+\.md\s+[A-Z]?\d+(?:\.\d+)*\s*\)|,?\s*\b[\w.-]+\.md(?:\s+[A-Z]?\d+(?:\.\d+)*)?"
)


def readable_source(source: str) -> str:
    """The seed's provenance note as a reader sees it: without source tags or file references.

    ``dqmi_snomed.md A2.3 [S16] (default ZZ99%); DERIVED: postcode pattern (mhsds.md 5.4) ...``
    becomes ``NHS Digital MHSDS VODIM rule (default ZZ99%); local rule: postcode pattern ...``:
    a note that opens with a reference to the digest's rule tables cites the published rules.
    """
    published = re.match(r"\s*[\w.-]+\.md\b", source) is not None
    text = _DIGEST_REF.sub("", _SOURCE_TAG.sub("", source))
    text = text.replace("DERIVED:", "local rule:").replace("NOT FOUND: 0", "not found (0% used)")
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"\s+([;,)])", r"\1", re.sub(r"\s{2,}", " ", text)).strip(" ;,")
    if published:
        lead = "NHS Digital MHSDS VODIM rule"
        text = f"{lead} {text}" if text.startswith(("(", "measure")) else f"{lead}; {text}" if text else lead
    return text[:1].upper() + text[1:]
