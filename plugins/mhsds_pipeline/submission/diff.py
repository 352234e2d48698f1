"""What a resubmission changes, table by table and key by key.

SDCS replaces the month's data with each upload (mhsds.md 6), so the package itself is always
whole; the diff is evidence for sign-off: "v002 corrects 1 referral and adds 3 contacts". Rows
are matched on the table's MHSDS key (``meta.key`` in the contracts); a key held by several rows
(duplicates the quality gate keeps visible) is compared as the sorted set of its rows. The
comparison is on the written text, which is exactly what would be uploaded, and runs in DuckDB
so a provider-size month does not need Python dictionaries of every row.

``diff_summary.json`` carries counts and the names of changed columns only (safe for XCom and
logs); ``diff_keys.csv`` beside it lists the keys (table, change, key values) and stays in the
package directory, which already holds the full data.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from mhsds_pipeline.formats import spreadsheet_safe
from mhsds_pipeline.submission.idb import read_csv, spec_from_manifest
from mhsds_pipeline.submission.manifest import MANIFEST_NAME, read_manifest


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _list(cols: list[str]) -> str:
    return "list_value(" + ", ".join(f"{_q(c)}::VARCHAR" for c in cols) + ")" if cols else "list_value('')"


def diff_table(con: duckdb.DuckDBPyConnection, old, new, key: list[str], columns: list[str]) -> dict:
    """Compare two text tables (pyarrow) on ``key``; returns counts and per-key changes."""
    con.register("old_rows", old)
    con.register("new_rows", new)
    k, r = _list(key), _list(columns)
    rows_sql = f"SELECT {k} AS k, list({r} ORDER BY {r}) AS r, count(*) AS n FROM {{t}} GROUP BY ALL"
    base = f"""
        WITH o AS ({rows_sql.format(t="old_rows")}),
             nw AS ({rows_sql.format(t="new_rows")}),
             j AS (
               SELECT coalesce(o.k, nw.k) AS k, o.n AS on_, nw.n AS nn, o.r AS orr, nw.r AS nr,
                      CASE WHEN o.k IS NULL THEN 'added' WHEN nw.k IS NULL THEN 'removed'
                           WHEN o.r IS DISTINCT FROM nw.r THEN 'changed' ELSE 'unchanged' END AS change
               FROM o FULL OUTER JOIN nw ON o.k IS NOT DISTINCT FROM nw.k)
    """
    counts = con.execute(
        base
        + """SELECT count(*) FILTER (WHERE change = 'added'), count(*) FILTER (WHERE change = 'removed'),
                    count(*) FILTER (WHERE change = 'changed'), count(*) FILTER (WHERE change = 'unchanged'),
                    coalesce(sum(nn) FILTER (WHERE change = 'added'), 0),
                    coalesce(sum(on_) FILTER (WHERE change = 'removed'), 0) FROM j"""
    ).fetchone()
    per_column = {}
    if columns:
        # Which columns changed, for keys held by one row on each side (duplicates are ambiguous).
        col_diffs = ", ".join(
            f"count(*) FILTER (WHERE change = 'changed' AND on_ = 1 AND nn = 1 "
            f"AND orr[1][{i + 1}] IS DISTINCT FROM nr[1][{i + 1}])"
            for i in range(len(columns))
        )
        values = con.execute(base + f"SELECT {col_diffs} FROM j").fetchone()
        per_column = {c: int(v) for c, v in zip(columns, values, strict=True) if v}
    keys = con.execute(
        base + "SELECT change, k FROM j WHERE change <> 'unchanged' ORDER BY change, k"
    ).fetchall()
    con.unregister("old_rows")
    con.unregister("new_rows")
    return {
        "key": key,
        "rows_before": old.num_rows,
        "rows_after": new.num_rows,
        "added": counts[0],
        "removed": counts[1],
        "changed": counts[2],
        "unchanged": counts[3],
        "rows_added": int(counts[4]),
        "rows_removed": int(counts[5]),
        "changed_columns": per_column,
        "_keys": keys,
    }


def diff_packages(
    old_dir: Path, new_dir: Path, new_entries: list[dict], keys_csv: Path | None = None
) -> dict:
    """Diff every table of ``new_dir`` against the package in ``old_dir``."""
    old_manifest = read_manifest(old_dir)
    old_entries = {e["idb_table"]: e for e in old_manifest["tables"]}
    tables: dict[str, dict] = {}
    key_rows: list[tuple] = []
    con = duckdb.connect()
    try:
        for entry in new_entries:
            spec = spec_from_manifest(entry)
            name = spec.idb_table
            new = read_csv(new_dir / entry["file"], spec, typed=False)
            old_entry = old_entries.get(name)
            if old_entry is None:
                old = new.schema.empty_table()
                schema_changed = True
            else:
                old_spec = spec_from_manifest(old_entry)
                old = read_csv(old_dir / old_entry["file"], old_spec, typed=False)
                schema_changed = old_spec.column_names != spec.column_names
            common = [c for c in spec.column_names if c in old.column_names]
            key = [c for c in spec.key if c in common]
            result = diff_table(con, old.select(common), new.select(common), key, common)
            result["schema_changed"] = schema_changed
            for change, k in result.pop("_keys"):
                key_rows.append((name, change, *k))
            tables[name] = result
        for name in sorted(set(old_entries) - {e["idb_table"] for e in new_entries}):
            tables[name] = _dropped(old_entries[name])
    finally:
        con.close()
    if keys_csv is not None:
        with keys_csv.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\r\n")
            w.writerow(["idb_table", "change", "key_values"])
            for name, change, *k in key_rows:
                # People open this file in Excel: a key that looks like a formula is escaped.
                w.writerow([name, change, spreadsheet_safe("|".join("" if v is None else v for v in k))])
    totals = {
        c: sum(t[c] or 0 for t in tables.values())
        for c in ("added", "removed", "changed", "rows_added", "rows_removed")
    }
    return {
        "against": old_dir.name,
        "against_content_sha256": old_manifest.get("content_sha256"),
        "against_manifest": f"{old_dir.name}/{MANIFEST_NAME}",
        "totals": totals,
        "tables": tables,
    }


def _dropped(entry: dict) -> dict:
    """A table the previous package had and this one does not: every row removed."""
    return {
        "key": list(entry.get("key") or []),
        "rows_before": entry["rows"],
        "rows_after": 0,
        "added": 0,
        "removed": None,  # keys not counted: the table is gone
        "changed": 0,
        "unchanged": 0,
        "rows_added": 0,
        "rows_removed": entry["rows"],
        "changed_columns": {},
        "schema_changed": True,
    }
