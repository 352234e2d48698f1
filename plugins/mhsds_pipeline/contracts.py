"""The MHSDS table contracts, read from the dbt project (one source of truth).

The dbt marts declare, with enforced contracts, every MHSDS column and its type; the
publisher builds its explicit Arrow schemas from the same YAML so the Parquet that feeds the
submission cannot drift from what dbt checked at build time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import yaml

MARTS_YAML = Path("models") / "marts" / "mhsds" / "_mhsds__models.yml"

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

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(name, arrow_type(dtype)) for name, dtype in self.columns],
            metadata={"mhsds_table": self.idb_table, "dbt_model": self.model},
        )

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


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
    doc = yaml.safe_load(path.read_text())
    contracts: dict[str, TableContract] = {}
    for model in doc.get("models", []):
        config = model.get("config") or {}
        meta = {**(model.get("meta") or {}), **(config.get("meta") or {})}
        if not meta.get("idb_table"):
            raise ValueError(f"{path}: model {model['name']} has no meta.idb_table")
        if not (config.get("contract") or {}).get("enforced"):
            raise ValueError(f"{path}: model {model['name']} must have an enforced contract")
        columns = tuple((c["name"], c["data_type"]) for c in model.get("columns", []))
        contracts[model["name"]] = TableContract(
            model=model["name"],
            idb_table=meta["idb_table"],
            key=tuple(meta.get("key") or ()),
            columns=columns,
        )
    return contracts
