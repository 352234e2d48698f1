"""The SDCS "Summary Reports", written before upload (``dq/sdcs/*.csv``).

After a provider uploads, SDCS Cloud sends back four CSVs (mhsds.md 5.5; ../shared/reference
README): ``aggregation``, ``diagnostics``, ``validations`` and ``data_quality``, all with the
columns ``REPORT_TYPE, DESCRIPTION, CODE, NUMERATOR, DENOMINATOR, DATA_ITEM1, DATA_VALUE1 ...
DATA_ITEM10, DATA_VALUE10``. Trusts run their own tooling on them (e.g. counting rows per CODE
and joining CODE to NHS England's rules file). Writing the same files for every run lets that
tooling see this month's result before anything is uploaded.

* ``validations.csv`` (REPORT_TYPE ``Validation Failures``): one row per rejected record per
  rule (file, group and record rejections). DESCRIPTION is the rule's message from the v6.0
  rules file with its ``<Item>`` placeholders filled from the row; DATA_ITEMn / DATA_VALUEn are
  the items the message names (``[M001901]LocalPatientID``, value), in the message's order.
* ``data_quality.csv`` (``Data Quality Issues``): the same for Severity 1 warnings and warnings.
* ``aggregation.csv`` (``Aggregation``): per IDB table, CODE ``MHSARVnnn`` (NHS England's table
  names file), DESCRIPTION "Total MHSnnn Pre-deadline Processing Row Count", NUMERATOR the rows
  that would be submitted (rejected rows are not carried forward).
* ``diagnostics.csv`` (``Diagnostic``): the diagnostics whose definition is public (mhsds.md 5.5
  names "Completed NHS Number", "Valid Ethnic Category" and "Hospital Provider Spells with no
  associated Ward Stays"), counted over the submitted rows. Their MHSDAGnnn numbers are not
  published, so CODE is left blank rather than guessed (docs/rules.md).

Privacy: values are local identifiers and coded items only. An NHS number is never written:
its DATA_VALUE is empty and its placeholder reads ``[withheld]``. Values a spreadsheet would run
as a formula get a leading apostrophe. Row order is fixed (rule, then row key), so a rerun gives
the same bytes. Everything is read by SQL in the warehouse; only failing rows' items come back.
"""

from __future__ import annotations

import csv
from datetime import date, datetime, time
from pathlib import Path

import sqlalchemy as sa

from mhsds_pipeline.formats import spreadsheet_safe
from mhsds_pipeline.quality.nhs_rules import aggregation_codes
from mhsds_pipeline.quality.rules import Catalogue, Rule, SqlContext, in_list, lit, q, seed_codes

COLUMNS = ["REPORT_TYPE", "DESCRIPTION", "CODE", "NUMERATOR", "DENOMINATOR"] + [
    f"DATA_{kind}{n}" for n in range(1, 11) for kind in ("ITEM", "VALUE")
]
FILES = ("aggregation.csv", "diagnostics.csv", "validations.csv", "data_quality.csv")
VALIDATION = "Validation Failures"
DATA_QUALITY = "Data Quality Issues"
#: Columns whose values never leave the warehouse in a report.
WITHHELD = frozenset({"NHSNumber"})
_MAX_ITEMS = 10


def report_type(rule: Rule) -> str | None:
    """Which report a rule's failures go to (None: not an SDCS outcome, e.g. ``info``)."""
    if rule.severity.endswith("rejected"):
        return VALIDATION
    if rule.severity in ("severity 1 warning", "warning"):
        return DATA_QUALITY
    return None


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(spreadsheet_safe(str(value)))


def _header_values(ctx: SqlContext) -> dict[str, str]:
    """Header items a row's message may name (e.g. ``[M000050]ReportingPeriodStartDate``): the
    period and provider being submitted."""
    return {
        "ReportingPeriodStartDate": ctx.rp_start.isoformat(),
        "ReportingPeriodEndDate": ctx.rp_end.isoformat(),
        "OrgIDProvider": ctx.org_id_provider,
    }


def _items(rule: Rule, ctx: SqlContext) -> list[tuple[str, str]]:
    """(item label, column) pairs the message shows: the table's own columns and the header's
    period and provider; items of another table (a parent's dates) are left blank."""
    columns = set(ctx.columns.get(rule.model, [])) | set(_header_values(ctx))
    out = []
    for item_id, column in rule.value_items:
        out.append((f"[{item_id}]{column}", column if column in columns else ""))
    return out[:_MAX_ITEMS]


def _row(rule: Rule, items: list[tuple[str, str]], values: dict[str, object]) -> list[str]:
    shown = {col: ("" if col in WITHHELD else _text(values.get(col))) for _, col in items if col}

    message = rule.filled({**shown, **dict.fromkeys(WITHHELD, "[withheld]")}, missing="")
    row = [report_type(rule) or "", message, rule.id, "", ""]
    for label, col in items:
        row += [label, shown.get(col, "") if col else ""]
    return row + [""] * (len(COLUMNS) - len(row))


def _failing_rows(conn, rule: Rule, ctx: SqlContext, failures_table: str) -> list[list[str]]:
    items = _items(rule, ctx)
    own = set(ctx.columns.get(rule.model, []))
    cols = sorted({c for _, c in items if c in own and c not in WITHHELD})
    selected = ", ".join(f"t.{q(c)}" for c in cols)
    order = selected or "1"
    # One report row per failing row: duplicate-key rows each failed, so failures and mart rows
    # are paired by their number within the key rather than joined n x n.
    sql = (
        f"WITH f AS (SELECT row_key, ROW_NUMBER() OVER (PARTITION BY row_key ORDER BY row_key) AS n "
        f"FROM {failures_table} WHERE rule_id = {lit(rule.id)} AND table_name = {lit(rule.model)}), "
        f"m AS (SELECT {ctx.key_expr(rule.model)} AS _row_key{', ' + selected if cols else ''}, "
        f"ROW_NUMBER() OVER (PARTITION BY {ctx.key_expr(rule.model)} ORDER BY {order}) AS n "
        f"FROM {ctx.table(rule.model)} t) "
        f"SELECT m.* FROM f JOIN m ON m._row_key = f.row_key AND m.n = f.n ORDER BY m._row_key, m.n"
    )
    header = {k: v for k, v in _header_values(ctx).items() if k not in own}
    out = []
    for rec in conn.execute(sa.text(sql)).mappings():
        out.append(_row(rule, items, {**header, **{c: rec[c] for c in cols}}))
    return out


def _count(conn, sql: str) -> int:
    return int(conn.execute(sa.text(sql)).scalar_one() or 0)


def _diagnostics(
    conn, catalogue: Catalogue, ctx: SqlContext, present: set[str], submit_view
) -> list[list[str]]:
    """The publicly defined diagnostics, over the rows that would be submitted."""
    rows = []
    if "MHS001MPI" in present:
        mpi = submit_view(catalogue.model("MHS001MPI"))
        total = _count(conn, f"SELECT COUNT(*) FROM {mpi}")
        nhs = _count(conn, f'SELECT COUNT(*) FROM {mpi} WHERE "NHSNumber" IS NOT NULL')
        ethnic = catalogue.rule("MHS00133").check["seed"]
        valid = _count(
            conn,
            f'SELECT COUNT(*) FROM {mpi} WHERE CAST("EthnicCategory" AS VARCHAR) IN {in_list(seed_codes(ethnic, seeds_dir=ctx.seeds_dir))}',
        )
        rows.append(["Diagnostic", "Completed NHS Number", "", str(nhs), str(total)])
        rows.append(["Diagnostic", "Valid Ethnic Category", "", str(valid), str(total)])
    if "MHS501HospProvSpell" in present and "MHS502WardStay" in present:
        spells = submit_view(catalogue.model("MHS501HospProvSpell"))
        stays = submit_view(catalogue.model("MHS502WardStay"))
        total = _count(conn, f"SELECT COUNT(*) FROM {spells}")
        alone = _count(
            conn,
            f"SELECT COUNT(*) FROM {spells} s WHERE NOT EXISTS (SELECT 1 FROM {stays} w "
            f'WHERE w."HospProvSpellID" = s."HospProvSpellID")',
        )
        rows.append(
            [
                "Diagnostic",
                "Hospital Provider Spells with no associated Ward Stays",
                "",
                str(alone),
                str(total),
            ]
        )
    return [r + [""] * (len(COLUMNS) - len(r)) for r in rows]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def write_sdcs_reports(
    engine: sa.Engine, catalogue: Catalogue, ctx: SqlContext, outcome, out_dir: Path
) -> list[Path]:
    """Write the four SDCS-shaped CSVs for this run from the rule engine's ``outcome``."""
    from mhsds_pipeline.quality.engine import FAILURES, submit_view

    out_dir.mkdir(parents=True, exist_ok=True)
    present = {t for t, o in outcome.tables.items() if o.present}
    codes = aggregation_codes()
    aggregation = []
    for table in catalogue.cascade_order:
        if table not in present:
            continue
        table_id = table[:6]
        aggregation.append(
            ["Aggregation", f"Total {table_id} Pre-deadline Processing Row Count", codes.get(table_id, ""),
             str(outcome.tables[table].submitted_rows), ""] + [""] * (len(COLUMNS) - 5)
        )  # fmt: skip
    validations: list[list[str]] = []
    quality: list[list[str]] = []
    with engine.connect() as conn:
        for rule in catalogue.rules:
            kind = report_type(rule)
            if kind is None or rule.table not in present:
                continue
            if rule.table_level:  # row_count: one row for the table
                rows, lo, hi = (
                    outcome.tables[rule.table].rows,
                    rule.check.get("min", 0),
                    rule.check.get("max"),
                )
                if rows < lo or (hi is not None and rows > hi):
                    validations.append(_row(rule, [], {}))
                continue
            if not outcome.failures.get(rule.id):
                continue
            target = validations if kind == VALIDATION else quality
            target.extend(_failing_rows(conn, rule, ctx, FAILURES))
        diagnostics = _diagnostics(conn, catalogue, ctx, present, submit_view)
    return [
        _write(out_dir / "aggregation.csv", aggregation),
        _write(out_dir / "diagnostics.csv", diagnostics),
        _write(out_dir / "validations.csv", validations),
        _write(out_dir / "data_quality.csv", quality),
    ]
