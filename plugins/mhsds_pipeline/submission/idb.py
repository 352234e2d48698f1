"""The shape of the Intermediate Database (IDB) we fill, and how each value is written as text.

SDCS Cloud takes MHSDS only as the Access IDB, whose structure must not be altered (mhsds.md 6):
every table and field the provider sends must match the template. The package therefore carries
one file per IDB table with the IDB's own table and column names, in IDB order, and the loader
(:mod:`.access_loader`) copies it into the template field by field. The table and column order
and the types come from the dbt contracts (``contracts.py``), so the package cannot drift from
what dbt checked at build time.

Text formats (mhsds.md 3.13 lists the few formats that are public; the ETOS format column was
not found, so the choices below are ours and are written into every package manifest):

* date ``YYYY-MM-DD``; time ``HH:MM:SS``; timestamp ``YYYY-MM-DDTHH:MM:SS`` (the Data
  Dictionary's ``CCYY-MM-DDThh:mm:ss`` form, as in the MHSDS XML extracts; no time zone:
  the warehouse holds local clock time). A value with a fraction of a second cannot be written
  in these formats and is refused rather than truncated.
* codes and identifiers are text exactly as built (``'01'`` keeps its leading zero; nothing is
  trimmed or padded); integers are plain decimal digits.

CSV dialect (RFC 4180): UTF-8 without BOM, comma, CRLF line ends, a header row of IDB column
names; every non-NULL value is double-quoted and NULL is an empty *unquoted* field, so NULL and
the empty string stay distinct and the file loads back to exactly the Parquet it came from.

People open these files in Excel, so they are made safe without losing anything: a text value
that a spreadsheet would run as a formula (leading ``=``, ``+``, ``-``, ``@``) is written with a
leading apostrophe, and a value that already starts with an apostrophe gets one more;
:func:`read_csv` and the Access loader remove exactly one (``formats.escape_cell``). A control
character or line break is never written: the quality gate rejects such records (v6 format
rules) and :func:`write_csv` refuses a table that still holds one (:class:`FormatError`).
Column formats and maximum lengths come from the dbt contracts (``config.meta.format``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mhsds_pipeline.contracts import arrow_type, contract_models, load_contracts

#: Bumped whenever the way values are written changes (a new format makes a new package version).
#: /2: formula-like text cells escaped with a leading apostrophe (reversible).
PACKAGE_FORMAT = "mhsds-idb-csv/2"

DATE_FORMAT = "YYYY-MM-DD"
TIME_FORMAT = "HH:MM:SS"
TIMESTAMP_FORMAT = "YYYY-MM-DDTHH:MM:SS"
_STRFTIME = {"date": "%Y-%m-%d", "timestamp": "%Y-%m-%dT%H:%M:%S"}

CSV_DIALECT = {
    "encoding": "utf-8",
    "bom": False,
    "delimiter": ",",
    "line_terminator": "\\r\\n",
    "header": True,
    "quoting": "every non-NULL value double-quoted (RFC 4180 escaping)",
    "null": "empty unquoted field",
    "formula_escape": "a text value starting with = + - @ or ' gets one leading apostrophe; readers remove one",
    "control_characters": "never written (the package is refused)",
}

#: RE2 patterns (pyarrow.compute): formats.CONTROL_CHARS, and text that escape_cell prefixes.
_CONTROL_RE2 = r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"
_ESCAPE_RE2 = "^[=+\\-@\t\r']"


def mandatory_tables() -> tuple[str, ...]:
    """The tables every submission must carry with data: the rules catalogue's list."""
    from mhsds_pipeline.quality.rules import load_catalogue

    return load_catalogue().mandatory_tables


#: Every v6 IDB table named in mhsds.md 2 (tables, in IDB order). Used to say plainly which
#: tables a package does not populate. MHS013, MHS107 and MHS603 have no v6 rules (status
#: unclear); MHS504 was replaced by MHS518 and the MHS8xx cluster tables were retired in v6.
#: Names for 509/510/511/514 are given in mhsds.md in short form; we prefix the table id.
V6_IDB_TABLES: tuple[str, ...] = (
    "MHS000Header",
    "MHS001MPI",
    "MHS002GP",
    "MHS003AccommStatus",
    "MHS004EmpStatus",
    "MHS005PatInd",
    "MHS006MHCareCoord",
    "MHS007DisabilityType",
    "MHS008CarePlanType",
    "MHS009CarePlanAgreement",
    "MHS010AssTechToSupportDisTyp",
    "MHS011SocPerCircumstances",
    "MHS012OverseasVisitorChargCat",
    "MHS013MHCurrencyModel",
    "MHS014eMED3FitNote",
    "MHS101Referral",
    "MHS102OtherServiceType",
    "MHS103OtherReasonReferral",
    "MHS104RTT",
    "MHS105OnwardReferral",
    "MHS106DischargePlanAgreement",
    "MHS107MedicationPrescription",
    "MHS201CareContact",
    "MHS202CareActivity",
    "MHS203OtherAttend",
    "MHS204IndirectActivity",
    "MHS205PatientSDDI",
    "MHS206StaffActivity",
    "MHS301GroupSession",
    "MHS302MHDropInContact",
    "MHS401MHActPeriod",
    "MHS402RespClinicianAssignPeriod",
    "MHS403ConditionalDischarge",
    "MHS404CommTreatOrder",
    "MHS405CommTreatOrderRecall",
    "MHS501HospProvSpell",
    "MHS502WardStay",
    "MHS503AssignedCareProf",
    "MHS505RestrictiveInterventInc",
    "MHS506Assault",
    "MHS507SelfHarm",
    "MHS509HomeLeave",
    "MHS510LeaveOfAbsence",
    "MHS511AbsenceWithoutLeave",
    "MHS512HospSpellCommAssPer",
    "MHS513SubstanceMisuse",
    "MHS514TrialLeave",
    "MHS515RestrictiveInterventType",
    "MHS516PoliceAssistanceRequest",
    "MHS517SMHExceptionalPackOfCare",
    "MHS518ClinReadyforDischarge",
    "MHS601MedHistPrevDiag",
    "MHS603ProvDiag",
    "MHS604PrimDiag",
    "MHS605SecDiag",
    "MHS606CodedScoreAssessmentRefer",
    "MHS607CodedScoreAssessmentAct",
    "MHS608AnonSelfAssess",
    "MHS609PresComp",
    "MHS701CPACareEpisode",
    "MHS702CPAReview",
    "MHS901StaffDetails",
    "MHS902ServiceTeamDetails",
    "MHS903WardDetails",
)

_TABLE_ID = re.compile(r"^(MHS\d{3})")
_ITEM_ID = re.compile(r"^\s*(M\d{6})\b")


class FormatError(ValueError):
    """A value the package format cannot represent without loss (e.g. a fractional second)."""

    def __init__(self, column: str, rows: int, detail: str):
        super().__init__(f"{column}: {rows} value(s) {detail}")
        self.column, self.rows, self.detail = column, rows, detail


@dataclass(frozen=True)
class ColumnSpec:
    name: str  # IDB column name
    data_type: str  # contract base type: varchar | date | time | timestamp | integer | bigint
    item_id: str | None  # ETOS data item UID from the contract description, e.g. M101010
    text_format: str  # how the value is written: YYYY-MM-DD, HH:MM:SS, ..., or the v6 format (max an20)
    max_length: int | None  # maximum length of a text value (the contract's v6 format)

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.data_type)

    def as_manifest(self) -> dict:
        return {
            "name": self.name,
            "type": self.data_type,
            "item_id": self.item_id,
            "format": self.text_format,
            "max_length": self.max_length,
        }


@dataclass(frozen=True)
class TableSpec:
    idb_table: str  # e.g. MHS101Referral
    model: str  # dbt model, e.g. mhs101_referral
    key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]

    @property
    def table_id(self) -> str:
        return _TABLE_ID.match(self.idb_table).group(1)

    @property
    def file_name(self) -> str:
        return f"{self.idb_table}.csv"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    @property
    def mandatory(self) -> bool:
        return self.idb_table in mandatory_tables()


def _base(data_type: str) -> str:
    base = data_type.strip().lower().split("(")[0]
    return {"int": "integer", "text": "varchar"}.get(base, base)


def _text_format(fmt, base: str) -> str:
    if base == "date":
        return DATE_FORMAT
    if base == "time":
        return TIME_FORMAT
    if base == "timestamp":
        return TIMESTAMP_FORMAT
    return fmt.text + (f" ({fmt.pattern.upper()} code)" if fmt.pattern else "")


def _item_ids(dbt_project_dir: Path) -> dict[tuple[str, str], str]:
    """(model, column) -> ETOS item UID, read from the descriptions the contracts document."""
    out: dict[tuple[str, str], str] = {}
    for model in contract_models(Path(dbt_project_dir)):
        for col in model.get("columns", []):
            m = _ITEM_ID.match(str(col.get("description") or ""))
            if m:
                out[(model["name"], col["name"])] = m.group(1)
    return out


def idb_order_key(idb_table: str) -> tuple[int, str]:
    m = _TABLE_ID.match(idb_table)
    return (int(m.group(1)[3:]) if m else 10_000, idb_table)


@lru_cache(maxsize=4)
def table_specs(dbt_project_dir: Path) -> tuple[TableSpec, ...]:
    """Every contracted MHSDS table as the IDB sees it, in IDB (table number) order."""
    items = _item_ids(dbt_project_dir)
    specs = []
    for contract in load_contracts(Path(dbt_project_dir)).values():
        if not _TABLE_ID.match(contract.idb_table):
            raise ValueError(f"contract {contract.model}: idb_table {contract.idb_table!r} is not MHSnnn...")
        cols = tuple(
            ColumnSpec(
                name=name,
                data_type=_base(dtype),
                item_id=items.get((contract.model, name)),
                text_format=_text_format(contract.value_format(name), _base(dtype)),
                max_length=contract.value_format(name).max_length if _base(dtype) == "varchar" else None,
            )
            for name, dtype in contract.columns
        )
        specs.append(TableSpec(contract.idb_table, contract.model, tuple(contract.key), cols))
    return tuple(sorted(specs, key=lambda s: idb_order_key(s.idb_table)))


def format_column(array: pa.ChunkedArray | pa.Array, column: ColumnSpec) -> pa.ChunkedArray:
    """One column as the text the package writes (NULL stays NULL)."""
    base = column.data_type
    array = pc.cast(array, column.arrow_type)  # the contract type, whatever width was stored
    try:
        if base == "date":
            return pc.strftime(pc.cast(array, pa.timestamp("s")), format=_STRFTIME["date"])
        if base == "timestamp":
            return pc.strftime(pc.cast(array, pa.timestamp("s")), format=_STRFTIME["timestamp"])
        if base == "time":
            return pc.cast(pc.cast(array, pa.time32("s")), pa.string())
    except pa.ArrowInvalid as exc:
        lost = _fractional_rows(array, base)
        raise FormatError(column.name, lost, f"have a fraction of a second ({exc})") from exc
    text = pc.cast(array, pa.string())
    if base == "varchar":
        bad = int(pc.sum(pc.match_substring_regex(text, _CONTROL_RE2)).as_py() or 0)
        if bad:
            raise FormatError(
                column.name,
                bad,
                "contain a control character or line break; the quality gate's v6 format rules "
                "reject these records, so re-run the gate and publication for the period",
            )
        escape = pc.fill_null(pc.match_substring_regex(text, _ESCAPE_RE2), False)
        if pc.any(escape).as_py():
            text = pc.if_else(escape, pc.binary_join_element_wise("'", text, ""), text)
    return text


def unescape_column(array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Undo the formula escape of :func:`format_column` (one leading apostrophe removed)."""
    quoted = pc.fill_null(pc.starts_with(array, "'"), False)
    if not pc.any(quoted).as_py():
        return array
    return pc.if_else(quoted, pc.utf8_slice_codeunits(array, 1), array)


def _fractional_rows(array, base: str) -> int:
    unit = pa.timestamp("us") if base == "timestamp" else pa.time64("us")
    micros = pc.cast(pc.cast(array, unit), pa.int64())
    return int(pc.sum(pc.not_equal(pc.remainder(micros, 1_000_000), 0)).as_py() or 0)


def to_text(table: pa.Table, spec: TableSpec) -> pa.Table:
    """The table as text columns in IDB order (raises :class:`FormatError` on lossy values)."""
    built = {name.lower(): name for name in table.column_names}
    arrays = [format_column(table.column(built[c.name.lower()]), c) for c in spec.columns]
    return pa.Table.from_arrays(arrays, names=spec.column_names)


def write_csv(table: pa.Table, spec: TableSpec, path: Path) -> None:
    """Write one IDB table in the package dialect (deterministic bytes for the same input)."""
    text = to_text(table, spec)
    options = pacsv.WriteOptions(
        include_header=True,
        delimiter=",",
        quoting_style="all_valid",
        quoting_header="all_valid",
        eol="\r\n",
    )
    pacsv.write_csv(text, str(path), write_options=options)


def read_options(column_names: list[str], types: dict[str, pa.DataType]) -> dict:
    """pyarrow CSV options that read the package dialect back (NULL vs empty string kept)."""
    return {
        "read_options": pacsv.ReadOptions(column_names=column_names, skip_rows=1, encoding="utf8"),
        "parse_options": pacsv.ParseOptions(delimiter=",", newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    }


def check_header(path: Path, names: list[str]) -> None:
    """The file's header row must be exactly the IDB column names in IDB order."""
    with Path(path).open("rb") as f:
        header = f.readline().decode("utf-8").rstrip("\r\n")
    expected = ",".join(f'"{n}"' for n in names)
    if header != expected:
        raise ValueError(f"{Path(path).name}: header {header!r} is not the IDB column order {expected!r}")


def read_csv(path: Path, spec: TableSpec, typed: bool = True) -> pa.Table:
    """Load a package file back: typed per the contract, or as the text that was written."""
    names = spec.column_names
    check_header(path, names)
    types = {c.name: (c.arrow_type if typed else pa.string()) for c in spec.columns}
    table = pacsv.read_csv(str(path), **read_options(names, types))
    for i, c in enumerate(spec.columns):
        if c.data_type == "varchar":
            table = table.set_column(i, c.name, unescape_column(table.column(i)))
    return table


def spec_from_manifest(entry: dict) -> TableSpec:
    """A table's spec as recorded in a package manifest (reads old packages, and the loader's
    input, without the dbt project)."""
    cols = tuple(
        ColumnSpec(
            name=c["name"],
            data_type=c["type"],
            item_id=c.get("item_id"),
            text_format=c.get("format") or "text",
            max_length=c.get("max_length"),
        )
        for c in entry["columns"]
    )
    return TableSpec(entry["idb_table"], entry.get("dbt_model", ""), tuple(entry.get("key") or ()), cols)
