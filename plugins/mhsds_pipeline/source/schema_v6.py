"""EPR tables behind the MHSDS tables built from NHS England's rules file (scripts/v6_tables.py).

For 47 of the 62 v6 tables (Mental Health Act periods, restrictive interventions, care plans,
leave, ward and staff details, ...) the source contract takes the clinical system's records in
the MHSDS items' own terms: one EPR table per MHSDS table (``meta.epr_table`` of its dbt contract
in ``dbt_project/models/marts/mhsds/_mhsds_v6__models.yml``), one column per IDB item in snake
case (``StartDateMHActLegalStatusClass`` -> ``start_date_mh_act_legal_status_class``) with the
contract's type (times as 'HH:MM:SS' text), plus

* ``record_id``: the EPR's own row identifier (the EPR key; never published);
* ``recorded_at``: when the row was keyed (a row keyed in the period is extracted with it even
  when its own dates lie outside, so the quality gate can reject it with its rule).

Most EPRs hold these modules (MHA administration, incident reporting, care planning) in tables of
roughly this grain; a trust whose tables differ maps them onto this shape in its extract views.
The tables are built from the contract at import, so a regenerated contract changes them too.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table

CONTRACT = (
    Path(__file__).resolve().parents[3]
    / "dbt_project"
    / "models"
    / "marts"
    / "mhsds"
    / "_mhsds_v6__models.yml"
)

EPR_KEY_COLUMN = "record_id"
RECORDED_AT = "recorded_at"


def snake(name: str) -> str:
    """IDB item name -> EPR column name (the rule scripts/v6_tables.py uses)."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


@cache
def generated_contracts(path: Path = CONTRACT) -> tuple[dict, ...]:
    """The generated tables' dbt contract entries (empty when the contract file is absent)."""
    if not Path(path).exists():
        return ()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(Path(path).read_text(), Loader=loader)  # noqa: S506
    return tuple(doc.get("models") or ())


def _sa_type(data_type: str):
    base = data_type.split("(")[0].lower()
    if base == "date":
        return Date
    if base == "time":  # 'HH:MM:SS' text, as many EPRs keep times (dbt casts it)
        return String(8)
    if base == "timestamp":
        return DateTime
    if base in ("integer", "int", "bigint"):
        return Integer
    # EPR text is wider than the MHSDS format (that is what the v6 Format rules catch)
    return String(255)


def define(metadata: MetaData) -> dict[str, Table]:
    """Create every generated EPR table on ``metadata``; EPR table name -> Table."""
    out: dict[str, Table] = {}
    for model in generated_contracts():
        meta = model["config"]["meta"]
        cols = [Column(EPR_KEY_COLUMN, String(24), nullable=False)]
        for c in model["columns"]:
            cols.append(Column(snake(c["name"]), _sa_type(c["data_type"])))
        cols.append(Column(RECORDED_AT, DateTime, nullable=False))
        out[meta["epr_table"]] = Table(meta["epr_table"], metadata, *cols)
    return out


def epr_to_model() -> dict[str, str]:
    """EPR table -> the dbt model its rows become."""
    return {m["config"]["meta"]["epr_table"]: m["name"] for m in generated_contracts()}
