"""The MHSDS table contracts, read from the dbt project (one source of truth).

The dbt marts declare, with enforced contracts, every MHSDS column and its type; the
publisher builds its explicit Arrow schemas from the same YAML so the Parquet that feeds the
submission cannot drift from what dbt checked at build time. Each column also declares its v6
format (``config.meta.format``, e.g. ``max an20``; see :mod:`mhsds_pipeline.formats`), which the
quality gate's format rules and the submission package read from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import yaml

from mhsds_pipeline.formats import ValueFormat, parse_format

MARTS_YAML = Path("models") / "marts" / "mhsds" / "_mhsds__models.yml"
#: The tables built from NHS England's rules file (scripts/v6_tables.py writes this contract).
MARTS_V6_YAML = Path("models") / "marts" / "mhsds" / "_mhsds_v6__models.yml"
MARTS_YAMLS = (MARTS_YAML, MARTS_V6_YAML)


def contract_models(dbt_project_dir: Path) -> list[dict]:
    """Every contracted MHSDS model entry of the dbt project (hand-built, then generated)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser is ~10x faster
    models: list[dict] = []
    for rel in MARTS_YAMLS:
        path = Path(dbt_project_dir) / rel
        if path.exists():
            models.extend(yaml.load(path.read_text(), Loader=loader).get("models") or [])  # noqa: S506
    return models


_ARROW = {
    "varchar": pa.string(),
    "text": pa.string(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "integer": pa.int32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
}


@dataclass(frozen=True)
class TableContract:
    model: str  # dbt model name, e.g. mhs101_referral
    idb_table: str  # IDB table name, e.g. MHS101Referral
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (IDB column name, dbt data_type)
    #: (IDB column name, v6 format text, pattern) from each column's ``config.meta``
    formats: tuple[tuple[str, str | None, str | None], ...] = ()

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(name, arrow_type(dtype)) for name, dtype in self.columns],
            metadata={"mhsds_table": self.idb_table, "dbt_model": self.model},
        )

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def value_format(self, column: str) -> ValueFormat:
        """The column's v6 format (``config.meta.format``; date/time types need none)."""
        dtype = dict(self.columns)[column]
        declared = {name: (text, pattern) for name, text, pattern in self.formats}
        text, pattern = declared.get(column, (None, None))
        try:
            return parse_format(text, dtype, pattern)
        except ValueError as exc:
            raise ValueError(f"contract {self.model}.{column}: {exc}") from exc


def arrow_type(data_type: str) -> pa.DataType:
    base = data_type.strip().lower().split("(")[0]
    try:
        return _ARROW[base]
    except KeyError as exc:
        raise ValueError(f"Contract data_type {data_type!r} has no Arrow mapping") from exc


@lru_cache(maxsize=4)
def load_contracts(dbt_project_dir: Path) -> dict[str, TableContract]:
    """Contracts keyed by dbt model name, in the YAML's order."""
    path = Path(dbt_project_dir) / MARTS_YAML
    contracts: dict[str, TableContract] = {}
    for model in contract_models(dbt_project_dir):
        config = model.get("config") or {}
        meta = {**(model.get("meta") or {}), **(config.get("meta") or {})}
        if not meta.get("idb_table"):
            raise ValueError(f"{path}: model {model['name']} has no meta.idb_table")
        if not (config.get("contract") or {}).get("enforced"):
            raise ValueError(f"{path}: model {model['name']} must have an enforced contract")
        columns = tuple((c["name"], c["data_type"]) for c in model.get("columns", []))
        formats = tuple(
            (c["name"], _column_meta(c).get("format"), _column_meta(c).get("pattern"))
            for c in model.get("columns", [])
        )
        contracts[model["name"]] = TableContract(
            model=model["name"],
            idb_table=meta["idb_table"],
            key=tuple(meta.get("key") or ()),
            columns=columns,
            formats=formats,
        )
    return contracts


def _column_meta(column: dict) -> dict:
    return {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}
