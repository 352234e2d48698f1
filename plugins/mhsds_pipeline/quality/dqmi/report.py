"""DQMI outputs: ``dqmi.parquet`` for machines and ``dqmi_report.html`` for information governance.

Writing and presentation only: the Parquet rows and key-value summary, the self-contained HTML
report, optional disclosure control of the counts, and atomic, deterministic writes (same result,
same bytes). Every number shown comes from a :class:`~.scoring.DqmiResult`; nothing is scored or
counted here. Tables are named by their IDB names (``MHS001MPI``, each item's ``idb_table``),
never by warehouse relation names, and the report shows readers no developer notes: the seed's
provenance notes lose their source tags and file references (:func:`readable_source`).
"""

from __future__ import annotations

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
from mhsds_pipeline.reports import Markup, render

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


#: The public sources the method follows, cited in the report by name and address.
SOURCES: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "NHS England (NHS Digital), Data Quality Maturity Index (DQMI) methodology, with its Appendix 1 "
        "(example of a DQMI calculation)",
        "https://digital.nhs.uk/data-and-information/data-tools-and-services/data-services/data-quality/"
        "data-quality-maturity-index-methodology",
        "the item score, coverage and data set score arithmetic; VODIM categories",
    ),
    (
        "NHS England (NHS Digital), Mental Health Services Data Set data quality",
        "https://digital.nhs.uk/data-and-information/data-tools-and-services/data-services/"
        "mental-health-data-hub/mental-health-services-data-quality",
        "the MHSDS data quality measures and dashboard",
    ),
    (
        "NHS Digital, Mental Health Monthly Statistics code (data quality measures, VODIM rules, DQMI "
        "extracts, disclosure control)",
        "https://github.com/NHSDigital/mental-health-monthly-statistics",
        "each item's valid, other and default codes and the time integrity measures",
    ),
    (
        "NHS England, MHSDS analytical code (Data Quality dashboard, Mental Health Core Data Pack)",
        "https://github.com/nhsengland/MHSDS",
        "the data set target (CDP_Q05) and SNOMED CT coverage (CDP_Q04)",
    ),
    (
        "NHS England (NHS Digital), MHSDS SNOMED CT data quality dashboard",
        "https://digital.nhs.uk/data-and-information/data-collections-and-data-sets/data-sets/"
        "mental-health-services-data-set/snomed-data-quality-dashboard",
        "SNOMED CT coverage of attended care contacts",
    ),
    (
        "SNOMED International, SNOMED CT identifiers (SCTID data type, partition identifier, check digit)",
        "https://docs.snomed.org/snomed-ct-specifications/snomed-ct-release-file-specification/"
        "snomed-ct-identifiers/6.1-sctid-data-type",
        "what a valid SNOMED CT concept identifier is",
    ),
)

_BADGE: Final[dict[str, str]] = {
    "passed": "pass",
    "failed": "fail",
    "error": "fail",
    "not_applicable": "info",
}


def _item_view(r, dc: bool) -> dict:
    """One row of the items table: text and formatted numbers, escaped by the template."""
    c = r.counts
    notes = [POPULATIONS[r.item.population]]
    on_hour = _on_the_hour_note(r.item, c)
    if on_hour:
        notes.append(on_hour)
    status_notes = [n for n in (r.error,) if n]
    if r.item.not_applicable:
        status_notes.append(r.item.not_applicable_reason or "")
    if c is not None and c.total and c.missing == c.total:
        status_notes.append("never populated: check the EPR mapping of this column")
    thr = r.item.default_threshold_pct
    counts = (*(None if c is None else getattr(c, cat) for cat in CATEGORIES), None if c is None else c.total)
    return {
        "name": r.item.data_item,
        "ids": Markup(" &middot; ").join((_breakable(r.item.item_id), r.item.data_item_uid or "")),
        "column": Markup(".<wbr>").join((r.item.idb_table, r.item.column_name)),
        "notes": notes,
        "counts": [_fmt_count(n, dc) for n in counts],
        "threshold": "-" if thr is None else _fmt(thr, 0) + "%",
        "excess": _fmt(r.defaults_in_excess),
        "score": _fmt(r.score),
        "target": _fmt(r.item.target_score, 0),
        "coverage": _fmt(r.coverage, 2),
        "status": r.status.replace("_", " "),
        "badge": _BADGE.get(r.status, "info"),
        "status_notes": status_notes,
    }


def render_dqmi_html(result: DqmiResult, *, disclosure_controlled: bool = False) -> str:
    """The human-readable report for information governance: one self-contained page, counts only."""
    s = result.snomed
    dc = disclosure_controlled
    cards = [
        (
            "DQMI data set score",
            _fmt(result.dataset_score),
            f"target {_fmt(result.dataset_target, 0)} - {result.dataset_status.replace('_', ' ')}",
            result.dataset_status,
        ),
        (
            "Mean item score",
            _fmt(result.mean_item_score),
            f"{len(result.scored_items)} items with data",
            None,
        ),
    ]
    if result.score_before_rejections is not None:
        cards.append(
            (
                "Before rejections",
                _fmt(result.score_before_rejections),
                "every built row, including those SDCS would reject: not NHS England's basis",
                None,
            )
        )
    cards.append(("Mean coverage", _fmt(result.mean_coverage, 2), "submitted / expected", None))
    if s is not None:
        cards.append(
            (
                "SNOMED CT coverage",
                "-" if s.coverage_pct is None else f"{_fmt(s.coverage_pct)}%",
                f"{_fmt_count(s.contacts_with_snomed, dc)} of {_fmt_count(s.attended_contacts, dc)} attended "
                f"contacts; target {_fmt(s.target, 0)}%",
                s.status,
            )
        )
    # Rows grouped by table (seed order within a table), each group under its IDB table name, so
    # a reader finds an item by the table an EPR team maps.
    table_order = list(dict.fromkeys(r.item.idb_table for r in result.items))
    grouped = sorted(result.items, key=lambda r: table_order.index(r.item.idb_table))
    groups: list[tuple[str, list[dict]]] = []
    for r in grouped:
        if not groups or groups[-1][0] != r.item.idb_table:
            groups.append((r.item.idb_table, []))
        groups[-1][1].append(_item_view(r, dc))
    n_na = sum(1 for r in result.items if r.status == "not_applicable")
    n_err = sum(1 for r in result.items if r.status == "error")
    item_count = (
        f"{len(result.items)} data items: {len(result.scored_items)} scored, {n_na} not applicable "
        f"(listed by NHS England but not scored here, or no records to score)"
        + (f", {n_err} not computed" if n_err else "")
        + "."
    )
    snomed = None
    if s is not None:
        snomed = {
            "table": s.table_name,
            "activity_table": s.activity_table,
            "attended_codes": ", ".join(s.attended_codes),
            "target": _fmt(s.target, 0),
            "attended": _fmt_count(s.attended_contacts, dc),
            "with_snomed": _fmt_count(s.contacts_with_snomed, dc),
            "coverage": "-" if s.coverage_pct is None else _fmt(s.coverage_pct) + "%",
            "status": s.status.replace("_", " "),
            "badge": _BADGE.get(s.status, "info"),
            "error": s.error,
        }
    dc_note = (
        "Counts are disclosure-controlled: under 5 shown as * and the rest rounded to the nearest 5 "
        "(scores are computed from the exact counts)."
        if dc
        else "Counts are exact record counts of the provider's own submission, for internal data-quality use. "
        "Do not share this copy outside the trust: share a disclosure-controlled copy instead (counts under 5 "
        "suppressed, the rest rounded to the nearest 5)."
    )
    provider = f" · provider {result.provider}" if result.provider else ""
    return render(
        "dqmi_report.html",
        title=f"MHSDS Data Quality Maturity Index (DQMI) – {result.period}",
        subtitle=f"Local estimate computed in the warehouse{provider} · method version {result.method_version} · "
        f"submission header {'present' if result.submitted else 'ABSENT (coverage 0)'}",
        footer=(
            "Disclosure-controlled counts. " if dc else "Exact counts: not for sharing outside the trust. "
        ),
        result=result,
        cards=[
            {"label": label, "value": v, "note": note, "cls": _BADGE.get(status or "", "") if status else ""}
            for label, v, note, status in cards
        ],
        groups=groups,
        item_count=item_count,
        categories=[(cat.title(), CATEGORY_MEANING[cat]) for cat in CATEGORIES],
        snomed=snomed,
        dataset_target=_fmt(result.dataset_target, 0),
        scored=len(result.scored_items),
        rules=[
            {
                "name": r.item.data_item,
                "id": _breakable(r.item.item_id),
                "rule": r.item.rule.replace("_", " "),
                "text": _rule_text(r.item),
                "basis": readable_source(r.item.source),
            }
            for r in grouped
        ],
        sources=SOURCES,
        dc_note=dc_note,
    )


def _on_the_hour_note(item: DqmiItem, counts: VodimCounts | None) -> str:
    """Under a time item: NHS Digital's integrity rate (a share, never a count: safe to share)."""
    if item.rule not in RULES_INTEGRITY or counts is None:
        return ""
    pct = on_the_hour_pct(counts)
    return "" if pct is None else f"on the hour: {_fmt(pct)}% of populated times"


def _breakable(identifier: str) -> Markup:
    """An escaped snake_case id that may wrap after its underscores rather than mid-word."""
    return Markup("_<wbr>").join(identifier.split("_"))


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
