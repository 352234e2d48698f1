"""Reading EPR cells into their contract types without trusting them.

A SQLite EPR is dynamically typed: a DATE column can hold ``'2026-02-30'`` or ``'not a date'``,
an INTEGER column ``'abc'`` or ``1.5``. Converting such a cell used to abort the whole month
with an error that named no table, column or row and echoed the raw value (which can be an
identifier) into task logs, or, for a float in an integer column, truncate it silently.

Here every cell is parsed against the type the source contract gives its column
(:mod:`mhsds_pipeline.source.schema`), and a cell that does not parse is handled by what MHSDS
says about it, never by its value:

* **A record rejection, not an abort.** The cell lands as NULL and the row is recorded as a
  :class:`CellError` (table, column, problem, the row's EPR key). The quality gate quarantines
  the row with the v6 "incorrect data format" rule of the MHSDS column the cell feeds (e.g.
  ``appointments.start_at`` -> ``CareContDate`` -> MHS20107), or, for a column that feeds no
  published item, with the table's ``LOCAL_<table>_SOURCE_CELL`` rule; its dependants follow
  by group rejection, as for every other rejection.
* **Structural columns abort, clearly.** A row whose key or link to its parent cannot be read
  cannot be quarantined, traced or cascaded: the extract stops with
  :class:`mhsds_pipeline.extract.UnreadableCellError`, naming table, column, rule and the pseudonymised row key.
* **No raw value leaves this module.** Messages, logs and the landing record carry the problem
  class (``not_a_date``, ``impossible_date`` ...) and pseudonymised keys only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

import pyarrow as pa

from mhsds_pipeline.privacy import pseudonymise
from mhsds_pipeline.source.mapping import SOURCES

#: A problem class per unreadable cell: what a person reads instead of the value.
PROBLEMS: dict[str, str] = {
    "not_a_date": "is not a date (YYYY-MM-DD)",
    "impossible_date": "is a date that does not exist (e.g. 30 February)",
    "not_a_timestamp": "is not a timestamp (YYYY-MM-DD HH:MM:SS)",
    "impossible_timestamp": "is a timestamp that does not exist (day, hour or minute out of range)",
    "not_an_integer": "is not a whole number",
    "not_a_whole_number": "is a number with a fraction where a whole number is required",
    "integer_out_of_range": "is a whole number outside the 64-bit range",
    "not_text": "is not readable text (binary or undecodable bytes)",
}

#: The local rule for an unreadable key or parent link (v6 has no code for "the extract could
#: not read the row's identity"; the row would be rejected as a whole, so the run stops).
KEY_RULE = "LOCAL_EPR_KEY_UNREADABLE"
#: Cells of a lookup table (no MHSDS rows of its own) are reported under this local rule.
LOOKUP_RULE = "LOCAL_EPR_LOOKUP_CELL"

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_STAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$")
_INT = re.compile(r"^[+-]?\d+$")
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class CellError:
    """One unreadable cell: where it is and what is wrong with it, never what it holds."""

    epr_table: str
    epr_column: str
    problem: str  # a key of PROBLEMS
    key: tuple[str | None, ...]  # the row's EPR key (readable by construction)

    @property
    def pseudonym(self) -> str:
        return pseudonymise(self.epr_table, *self.key)


# ------------------------------------------------------------------------------ parsing


def _parse_date(value) -> tuple[date | None, str | None]:
    if isinstance(value, datetime):
        return value.date(), None
    if isinstance(value, date):
        return value, None
    if not isinstance(value, str):
        return None, "not_a_date"
    m = _DATE.match(value.strip())
    if not m:
        return None, "not_a_date"
    try:
        return date(int(m[1]), int(m[2]), int(m[3])), None
    except ValueError:
        return None, "impossible_date"


def _parse_timestamp(value) -> tuple[datetime | None, str | None]:
    if isinstance(value, datetime):
        return value, None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day), None
    if not isinstance(value, str):
        return None, "not_a_timestamp"
    m = _STAMP.match(value.strip())
    if not m:
        return None, "not_a_timestamp"
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        return (
            datetime(
                int(y),
                int(mo),
                int(d),
                int(h or 0),
                int(mi or 0),
                int(s or 0),
                int((frac or "0").ljust(6, "0")),
            ),
            None,
        )
    except ValueError:
        return None, "impossible_timestamp"


def _parse_int(value) -> tuple[int | None, str | None]:
    if isinstance(value, bool):
        return None, "not_an_integer"
    if isinstance(value, int):
        parsed = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None, "not_an_integer"
        if not value.is_integer():
            return None, "not_a_whole_number"  # pyarrow would truncate 1.5 to 1 silently
        parsed = int(value)
    elif isinstance(value, str) and _INT.match(value.strip()):
        parsed = int(value.strip())
    else:
        return None, "not_an_integer"
    if not _INT64[0] <= parsed <= _INT64[1]:
        return None, "integer_out_of_range"
    return parsed, None


def _parse_text(value) -> tuple[str | None, str | None]:
    if isinstance(value, str):
        return value, None
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8"), None
        except UnicodeDecodeError:
            return None, "not_text"
    if isinstance(value, bool):
        return None, "not_text"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value), None  # a number stored in a text column: its text is lossless
    return None, "not_text"


def parse_value(value, arrow_type: pa.DataType) -> tuple[object, str | None]:
    """``(parsed, None)`` or ``(None, problem)``; NULL is always readable."""
    if value is None:
        return None, None
    if pa.types.is_timestamp(arrow_type):
        return _parse_timestamp(value)
    if pa.types.is_date(arrow_type):
        return _parse_date(value)
    if pa.types.is_integer(arrow_type):
        return _parse_int(value)
    if pa.types.is_string(arrow_type):
        return _parse_text(value)
    raise TypeError(f"No cell parser for Arrow type {arrow_type}")


# ------------------------------------------------------------------------------ what a cell feeds

#: Parent links per EPR table: with the key columns (source.schema.EPR_KEYS) these are *structural*.
#: A row whose link cannot be read has no place in the MHSDS tree (no cascade, no trace).
LINK_COLUMNS: dict[str, tuple[str, ...]] = {
    "referrals": ("patient_id",),
    "appointments": ("referral_id",),
    "interventions": ("appointment_id",),
    "indirect_activities": ("referral_id",),
    "assessments": ("referral_id", "intervention_id"),
    "admissions": ("referral_id",),
    "ward_movements": ("admission_id",),
    "diagnoses": ("referral_id",),
}

#: EPR column -> the MHSDS column(s) it becomes, per MHSDS table (dbt model). The v6 "Format"
#: rule of that column (expectations/rules/mhsds_v6_rules.yml ``format_rules``) is the rule an
#: unreadable cell breaks. A column not listed here (or whose MHSDS column has no format rule)
#: feeds no published item with a format rule: its table's LOCAL_<table>_SOURCE_CELL applies.
MHSDS_COLUMNS: dict[tuple[str, str], dict[str, str]] = {
    ("patients", "date_of_birth"): {"mhs001_mpi": "PersonBirthDate"},
    ("patients", "date_of_death"): {"mhs001_mpi": "PersDeathDate"},
    ("gp_registrations", "deregistered_on"): {"mhs002_gp": "EndDateGMPRegistration"},
    ("referrals", "received_at"): {"mhs101_referral": "ReferralRequestReceivedDate"},
    ("referrals", "discharged_at"): {"mhs101_referral": "ServDischDate"},
    ("referrals", "rejected_on"): {"mhs101_referral": "ReferRejectionDate"},
    ("referrals", "team_id"): {"mhs101_referral": "CareProfTeamLocalID"},
    ("referral_teams", "closed_on"): {"mhs102_other_service_type": "ReferClosureDate"},
    ("referral_teams", "rejected_on"): {"mhs102_other_service_type": "ReferRejectionDate"},
    ("appointments", "start_at"): {"mhs201_care_contact": "CareContDate"},
    ("appointments", "duration_minutes"): {"mhs201_care_contact": "ClinContDurOfCareCont"},
    ("appointments", "cancelled_on"): {"mhs201_care_contact": "CareContCancelDate"},
    ("appointments", "team_id"): {"mhs201_care_contact": "OtherCareProfTeamLocalID"},
    ("interventions", "duration_minutes"): {"mhs202_care_activity": "ClinContactDurOfCareAct"},
    ("indirect_activities", "start_at"): {"mhs204_indirect_activity": "IndirectActDate"},
    ("indirect_activities", "duration_minutes"): {"mhs204_indirect_activity": "DurationIndirectAct"},
    ("indirect_activities", "team_id"): {"mhs204_indirect_activity": "OtherCareProfTeamLocalID"},
    ("assessments", "completed_at"): {"mhs606_coded_score_assessment_refer": "AssToolCompTimestamp"},
    ("assessments", "score"): {
        "mhs606_coded_score_assessment_refer": "PersScore",
        "mhs607_coded_score_assessment_act": "PersScore",
    },
    ("admissions", "decided_to_admit_at"): {"mhs501_hosp_prov_spell": "DecidedToAdmitDate"},
    ("admissions", "admitted_at"): {"mhs501_hosp_prov_spell": "StartDateHospProvSpell"},
    ("admissions", "planned_discharge_on"): {"mhs501_hosp_prov_spell": "PlannedDischDateHospProvSpell"},
    ("admissions", "discharged_at"): {"mhs501_hosp_prov_spell": "DischDateHospProvSpell"},
    ("ward_movements", "start_at"): {"mhs502_ward_stay": "StartDateWardStay"},
    ("ward_movements", "end_at"): {"mhs502_ward_stay": "EndDateWardStay"},
    ("diagnoses", "diagnosed_at"): {
        "mhs604_prim_diag": "CodedDiagTimestamp",
        "mhs605_sec_diag": "CodedDiagTimestamp",
    },
}

#: MHSDS table -> its key columns as (MHSDS column, EPR column, kind), so the warehouse can
#: compute the rule engine's row key (``SqlContext.key_expr``) of the MHSDS row an EPR row
#: becomes; kind says how staging casts the EPR column (s: trimmed text, d: date, ts: timestamp,
#: t: the time of day of a timestamp).
MART_KEYS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "mhs902_service_team_details": (("CareProfTeamLocalID", "team_id", "s"),),
    "mhs001_mpi": (("LocalPatientID", "patient_id", "s"),),
    "mhs002_gp": (
        ("LocalPatientID", "patient_id", "s"),
        ("GMPReg", "practice_code", "s"),
        ("StartDateGMPRegistration", "registered_on", "d"),
    ),
    "mhs101_referral": (("ServiceRequestID", "referral_id", "s"),),
    "mhs102_other_service_type": (
        ("ServiceRequestID", "referral_id", "s"),
        ("OtherCareProfTeamLocalID", "team_id", "s"),
    ),
    "mhs201_care_contact": (("CareContactID", "appointment_id", "s"),),
    "mhs202_care_activity": (("CareActID", "intervention_id", "s"),),
    "mhs204_indirect_activity": (
        ("ServiceRequestID", "referral_id", "s"),
        ("OtherCareProfTeamLocalID", "team_id", "s"),
        ("IndirectActDate", "start_at", "d"),
        ("IndirectActTime", "start_at", "t"),
    ),
    "mhs501_hosp_prov_spell": (("HospProvSpellID", "admission_id", "s"),),
    "mhs502_ward_stay": (("WardStayID", "ward_stay_id", "s"),),
    "mhs604_prim_diag": (
        ("ServiceRequestID", "referral_id", "s"),
        ("CodedDiagTimestamp", "diagnosed_at", "ts"),
        ("PrimDiag", "code", "s"),
    ),
    "mhs605_sec_diag": (
        ("ServiceRequestID", "referral_id", "s"),
        ("CodedDiagTimestamp", "diagnosed_at", "ts"),
        ("SecDiag", "code", "s"),
    ),
    "mhs606_coded_score_assessment_refer": (
        ("ServiceRequestID", "referral_id", "s"),
        ("CodedAssToolType", "tool_snomed", "s"),
        ("AssToolCompTimestamp", "completed_at", "ts"),
    ),
    "mhs607_coded_score_assessment_act": (
        ("CareActID", "intervention_id", "s"),
        ("CodedAssToolType", "tool_snomed", "s"),
        ("PersScore", "score", "s"),
    ),
}

#: Which rows of an EPR table an MHSDS table takes (as staging/intermediate route them).
ROUTES: dict[str, str] = {
    "mhs604_prim_diag": "upper(trim(cast(r.\"rank\" as varchar))) = 'P'",
    "mhs605_sec_diag": "upper(trim(cast(r.\"rank\" as varchar))) = 'S'",
    "mhs606_coded_score_assessment_refer": "nullif(trim(cast(r.\"intervention_id\" as varchar)), '') is null",
    "mhs607_coded_score_assessment_act": "nullif(trim(cast(r.\"intervention_id\" as varchar)), '') is not null",
}


def source_cell_rule_id(mhsds_table: str) -> str:
    """``LOCAL_MHS201_SOURCE_CELL`` for mhs201_care_contact."""
    return f"LOCAL_{mhsds_table.split('_', 1)[0].upper()}_SOURCE_CELL"


def rule_for(
    epr_table: str, epr_column: str, format_rules: dict[tuple[str, str], str]
) -> list[tuple[str, str | None, str]]:
    """``(mhsds_table, mhsds_column or None, rule_id)`` for each MHSDS table the cell reaches:
    the v6 format rule of the column it feeds, else the table's local source-cell rule."""
    out = []
    feeds = MHSDS_COLUMNS.get((epr_table, epr_column), {})
    for mhsds_table in SOURCES.get(epr_table, ()):
        column = feeds.get(mhsds_table)
        rule = format_rules.get((mhsds_table, column)) if column else None
        out.append((mhsds_table, column if rule else None, rule or source_cell_rule_id(mhsds_table)))
    return out


def key_rule(epr_table: str, epr_column: str, format_rules: dict[tuple[str, str], str]) -> str:
    """The rule named when a structural cell cannot be read: the v6 format rule of the MHSDS
    key column it becomes where there is one, else :data:`KEY_RULE`."""
    for mhsds_table, keys in MART_KEYS.items():
        for mhsds_column, source_column, _ in keys:
            if source_column == epr_column and (mhsds_table, mhsds_column) in format_rules:
                if mhsds_table in SOURCES.get(epr_table, ()):
                    return format_rules[(mhsds_table, mhsds_column)]
    return KEY_RULE


@cache
def format_rule_ids() -> dict[tuple[str, str], str]:
    """(MHSDS table as its dbt model, column) -> v6 format rule id, from the rules catalogue."""
    from mhsds_pipeline.quality.rules import load_catalogue

    return {(r.model, r.column): r.id for r in load_catalogue().rules if r.type == "format"}


def describe(problem: str) -> str:
    return PROBLEMS.get(problem, "could not be read")


def _add_generated_tables() -> None:
    """The tables built from NHS England's rules file (source/schema_v6.py): each EPR column
    feeds the IDB column of the same name in its one MHSDS table."""
    from mhsds_pipeline.source.schema_v6 import generated_contracts, snake

    kinds = {"date": "d", "timestamp": "ts"}
    for model in generated_contracts():
        meta = model["config"]["meta"]
        epr_table, name = meta["epr_table"], model["name"]
        types = {c["name"]: c["data_type"].split("(")[0].lower() for c in model["columns"]}
        for column in types:
            MHSDS_COLUMNS[(epr_table, snake(column))] = {name: column}
        MART_KEYS[name] = tuple((c, snake(c), kinds.get(types[c], "s")) for c in meta["key"])


_add_generated_tables()
