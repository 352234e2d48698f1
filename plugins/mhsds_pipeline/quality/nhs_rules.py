"""NHS England's MHSDS v6.0 validation rules file, read as data.

The catalogue (``expectations/rules/mhsds_v6_rules.yml``) states *how* each rule is checked;
what the rule *is* (its level, its consequence and its message text) comes from NHS England's
own rules file, copied unchanged to ``expectations/rules/reference/MHSDS_validation_rules_v6.0.csv``
(1,134 rules over 62 tables; provenance in ``expectations/README.md``). Reading it here, rather
than retyping codes and messages, lets the catalogue grow to the whole file without a new
mechanism, and keeps our messages word for word those SDCS sends back.

The file spells error levels inconsistently ("Record rejected" / "Record Rejected"); they are
normalised to NHS England's usual spelling.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
RULES_FILE = REPO / "expectations" / "rules" / "reference" / "MHSDS_validation_rules_v6.0.csv"
TABLE_NAMES_FILE = REPO / "expectations" / "rules" / "reference" / "MHSDS_table_names_v6.0.csv"

#: NHS England's consequences, as the rules file spells them once normalised, plus our two:
#: "File rejected" (the header, or a file-level check) and "Info" (reported, never rejected).
CONSEQUENCES = ("File rejected", "Group rejected", "Record rejected", "Severity 1 Warning", "Warning", "Info")
_NORMAL = {c.lower(): c for c in CONSEQUENCES}

#: The file names MHS205 two ways: its two ServiceRequestID rules say "MHS205SDDigitalIntervention",
#: its other twelve the IDB name "MHS205PatientSDDI" (MHSDS_table_names_v6.0.csv: one table, MHS205).
TABLE_ALIASES = {"MHS205SDDigitalIntervention": "MHS205PatientSDDI"}

#: ``[M001901]LocalPatientID=<LocalPatientID>``: a data item the message shows with its value.
_VALUE_ITEM = re.compile(r"\[(M\d{6})\](\w+)=<(\w+)>")


@dataclass(frozen=True)
class NhsRule:
    """One row of the v6.0 rules file."""

    code: str  # MHS00165
    table: str  # IDB table name, MHS001MPI
    item_id: str  # M001040, or the table id for a group rule
    element: str  # XML element name (the IDB column), or the table name for a group rule
    level: str  # File / Group / Record
    kind: str  # Blank / Format / National Code / AV
    consequence: str  # one of CONSEQUENCES
    message: str  # "Record rejected - [M001040]NHSNumber has ... [M001901]LocalPatientID=<LocalPatientID>"
    guidance: str

    @property
    def value_items(self) -> tuple[tuple[str, str], ...]:
        """``(item id, column)`` of each data item the message shows with its value, in order
        (the SDCS reports' DATA_ITEMn / DATA_VALUEn pairs)."""
        return tuple((m.group(1), m.group(3)) for m in _VALUE_ITEM.finditer(self.message))


def normalise_consequence(text: str) -> str:
    try:
        return _NORMAL[" ".join(text.split()).lower()]
    except KeyError:
        raise ValueError(f"unknown consequence {text!r}; expected one of {CONSEQUENCES}") from None


def _column(row: dict[str, str], prefix: str) -> str:
    """The value of the column whose header starts with ``prefix`` (headers hold line breaks)."""
    for key, value in row.items():
        if key and key.replace("\n", " ").startswith(prefix):
            return (value or "").strip()
    raise KeyError(prefix)


@cache
def load_nhs_rules(path: Path = RULES_FILE) -> dict[str, NhsRule]:
    """Every rule of the v6.0 file by error code."""
    rules: dict[str, NhsRule] = {}
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            code = _column(row, "Error Code")
            if not code:
                continue
            if code in rules:
                raise ValueError(f"{path}: error code {code} appears twice")
            rules[code] = NhsRule(
                code=code,
                table=TABLE_ALIASES.get(_column(row, "Table"), _column(row, "Table")),
                item_id=_column(row, "UID"),
                element=_column(row, "XML ELEMENT NAME"),
                level=_column(row, "Validation Level").title(),
                kind=_column(row, "Generic Validation Type"),
                consequence=normalise_consequence(_column(row, "Error Level")),
                message=_column(row, "Validation Text with Action"),
                guidance=_column(row, "Additional Guidance"),
            )
    return rules


@cache
def aggregation_codes(path: Path = TABLE_NAMES_FILE) -> dict[str, str]:
    """IDB table id (MHS101) -> the SDCS aggregation report code (MHSARV101)."""
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        return {row["TBL_Code"]: row["LUP_Code"] for row in csv.DictReader(fh) if row.get("TBL_Code")}
