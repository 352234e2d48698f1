"""Small hand-built published MHSDS months, for tests and demonstrations of the metrics.

``write_published_month`` lays out a month exactly as the publisher does (``output/<YYYY-MM>``
symlink -> ``.versions/<YYYY-MM>/<version>/mhsds/<IdbTable>.parquet`` + ``manifest.json``) with
only the columns the finance metrics read (published.TABLES), typed as in the contracts. Rows are
dicts; a column left out of a row is null.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mhsds_pipeline.checksums import sha256_file
from mhsds_pipeline.finance.published import TABLES, arrow_type


def write_published_month(
    output_dir: Path, period: str, tables: dict[str, list[dict]], version: str = "v1"
) -> Path:
    """Publish ``tables`` (IDB table -> rows) as ``period``; absent tables are written empty."""
    version_dir = Path(output_dir) / ".versions" / period / f"{version}__fixture"
    (version_dir / "mhsds").mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}
    for table, (columns, _, _) in TABLES.items():
        rows = tables.get(table, [])
        schema = pa.schema([pa.field(c, arrow_type(c)) for c in columns])
        data = {c: [_value(r.get(c), schema.field(c).type) for r in rows] for c in columns}
        path = version_dir / "mhsds" / f"{table}.parquet"
        pq.write_table(pa.table(data, schema=schema), path)
        files[table] = {"path": f"mhsds/{table}.parquet", "sha256": sha256_file(path)}
    manifest = {
        "reporting_period": period,
        "run_id": f"fixture_{version}",
        "code_version": "fixture",
        "tables": files,
    }
    (version_dir / "manifest.json").write_text(json.dumps(manifest))
    link = Path(output_dir) / period
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(version_dir, link.parent), link)
    return version_dir


def _value(value, column_type: pa.DataType):
    if value is None:
        return None
    if column_type == pa.date32() and isinstance(value, str):
        return date.fromisoformat(value)
    if pa.types.is_timestamp(column_type) and isinstance(value, str):
        return datetime.fromisoformat(value)
    if pa.types.is_time(column_type) and isinstance(value, str):
        return time.fromisoformat(value)
    return value
