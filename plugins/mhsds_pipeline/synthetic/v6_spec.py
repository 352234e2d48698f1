"""What the synthetic v6 tables are made of: the tables and rules read from the contract and
the catalogue, the per-table volumes and anchors (:data:`SPECS`), code lists, formats and the
MHSDS row key text (:func:`key_text`). Used by :mod:`mhsds_pipeline.synthetic.v6_tables`."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from mhsds_pipeline.source import schema_v6
from mhsds_pipeline.synthetic.scope import or_by_key

REPO = Path(__file__).resolve().parents[3]
SEEDS = REPO / "dbt_project" / "seeds" / "reference"
RULE_FILES = (
    REPO / "expectations" / "rules" / "mhsds_v6_rules_tables.yml",
    REPO / "expectations" / "rules" / "mhsds_v6_rules.yml",
)
#: The one placeholder code list, used for a code column until its seed (or code_list rule) lands.
PLACEHOLDER_CODES = ("01", "02", "03", "04")
#: Organisations used for ODS-pattern columns (must be live in ref_ods_organisations).
PROVIDER_ORG = "R1A"
#: Organisation codes live in the run's ODS seed but not in this repository's (synthetic providers
#: of ``mhsds generate --providers``; set by ``synthetic.profile.applied``).
EXTRA_ORGS: frozenset[str] = frozenset()
#: ICD-10 codes (DIAGNOSIS SCHEME IN USE 02 / FINDING SCHEME IN USE 01).
ICD10 = ("F32.1", "F33.1", "F41.1", "F43.1", "F20.0", "F31.1", "F60.3", "F90.0", "F84.0")
#: Defect families and the value planted for each.
FAMILIES = ("blank", "format", "national_code", "av", "orphan")
MIN_ROWS = 8  # at least this many rows per table per month at any scale (room for the defects)
ORPHAN_BASE = 8_800_000  # integer ids no generated parent uses (existing orphans use 9,000,000+)
NAT_D = np.datetime64("NaT", "D")
DAY_D = np.timedelta64(1, "D")

# How each table is made: anchor (what a row hangs off), rows per anchor per month (or per anchor
# once for "once" tables; absolute rows per month at scale 1 for anchor "none"), share of
# period rows left open (no end date), own id prefix.
SPECS: dict[str, dict] = {
    "MHS003AccommStatus": {"anchor": "patient", "rate": 0.03},
    "MHS004EmpStatus": {"anchor": "patient", "rate": 0.03},
    "MHS005PatInd": {"anchor": "patient", "rate": 0.02, "once": True},
    "MHS006MHCareCoord": {"anchor": "patient", "rate": 0.2, "open": 0.4},
    "MHS007DisabilityType": {"anchor": "patient", "rate": 0.12, "once": True},
    "MHS008CarePlanType": {"anchor": "patient", "rate": 0.15, "id": "CP"},
    "MHS009CarePlanAgreement": {"anchor": "MHS008CarePlanType", "rate": 0.95},
    "MHS010AssTechToSupportDisTyp": {"anchor": "patient", "rate": 0.005},
    "MHS011SocPerCircumstances": {"anchor": "patient", "rate": 0.02},
    "MHS012OverseasVisitorChargCat": {"anchor": "patient", "rate": 0.003, "open": 0.5},
    "MHS014eMED3FitNote": {"anchor": "patient", "rate": 0.01},
    "MHS103OtherReasonReferral": {"anchor": "referral", "rate": 0.1, "once": True},
    "MHS104RTT": {"anchor": "referral", "rate": 0.02, "open": 0.5},
    "MHS105OnwardReferral": {"anchor": "referral", "rate": 0.02},
    "MHS106DischargePlanAgreement": {"anchor": "referral", "rate": 0.01},
    "MHS203OtherAttend": {"anchor": "contact", "rate": 0.08, "once": True},
    "MHS205PatientSDDI": {"anchor": "referral", "rate": 0.005, "open": 0.3},
    "MHS206StaffActivity": {"anchor": "activity", "rate": 0.25, "once": True},
    "MHS301GroupSession": {"anchor": "none", "rate": 80, "id": "GS"},
    "MHS302MHDropInContact": {"anchor": "none", "rate": 150, "id": "DI"},
    "MHS401MHActPeriod": {"anchor": "patient", "rate": 0.012, "open": 0.5, "id": "MHA"},
    "MHS402RespClinicianAssignPeriod": {"anchor": "MHS401MHActPeriod", "rate": 0.9},
    "MHS403ConditionalDischarge": {"anchor": "MHS401MHActPeriod", "rate": 0.1},
    "MHS404CommTreatOrder": {"anchor": "MHS401MHActPeriod", "rate": 0.2},
    "MHS405CommTreatOrderRecall": {"anchor": "MHS401MHActPeriod", "rate": 0.08},
    "MHS503AssignedCareProf": {"anchor": "spell", "rate": 0.9, "once": True},
    "MHS505RestrictiveInterventInc": {"anchor": "spell", "rate": 0.15, "id": "RI"},
    "MHS506Assault": {"anchor": "ward_stay", "rate": 0.05},
    "MHS507SelfHarm": {"anchor": "ward_stay", "rate": 0.05},
    "MHS509HomeLeave": {"anchor": "ward_stay", "rate": 0.2},
    "MHS510LeaveOfAbsence": {"anchor": "ward_stay", "rate": 0.15},
    "MHS511AbsenceWithoutLeave": {"anchor": "ward_stay", "rate": 0.03},
    "MHS512HospSpellCommAssPer": {"anchor": "spell", "rate": 0.9, "once": True},
    "MHS513SubstanceMisuse": {"anchor": "ward_stay", "rate": 0.03},
    "MHS514TrialLeave": {"anchor": "ward_stay", "rate": 0.02},
    "MHS515RestrictiveInterventType": {"anchor": "MHS505RestrictiveInterventInc", "rate": 1.3, "id": "RT"},
    "MHS516PoliceAssistanceRequest": {"anchor": "ward_stay", "rate": 0.02, "once": True},
    "MHS517SMHExceptionalPackOfCare": {"anchor": "spell", "rate": 0.05, "once": True},
    "MHS518ClinReadyforDischarge": {"anchor": "spell", "rate": 0.1, "once": True},
    "MHS601MedHistPrevDiag": {"anchor": "patient", "rate": 0.03},
    "MHS608AnonSelfAssess": {"anchor": "none", "rate": 2, "fixed": True},
    "MHS609PresComp": {"anchor": "referral", "rate": 0.02},
    "MHS701CPACareEpisode": {"anchor": "patient", "rate": 0.03, "open": 0.6, "id": "CPA"},
    "MHS702CPAReview": {"anchor": "MHS701CPACareEpisode", "rate": 0.5},
    "MHS901StaffDetails": {"anchor": "staff"},
    "MHS903WardDetails": {"anchor": "ward"},
}
#: IDB column -> existing-parent anchor id column (the value a row takes from its anchor).
ANCHOR_COLUMNS = {
    "LocalPatientID": "patient",
    "ServiceRequestID": "referral",
    "CareContactID": "contact",
    "CareActID": "activity",
    "HospProvSpellID": "spell",
    "WardStayID": "ward_stay",
}


# ------------------------------------------------------------------------------ contract, rules


@dataclass
class Column:
    name: str
    epr: str
    data_type: str
    fmt: str | None
    pattern: str | None
    mandatory: bool
    codes_seed: str | None


@dataclass
class Table:
    index: int
    model: str
    idb: str
    epr: str
    key: list[str]
    scope: dict
    parents: list[dict]
    columns: dict[str, Column]
    rules: list[dict] = field(default_factory=list)

    def rules_of(self, kind: str, column: str | None = None) -> list[dict]:
        return [
            r
            for r in self.rules
            if r["check"]["type"] == kind and (column is None or r.get("column") == column)
        ]


@cache
def _rule_docs() -> tuple[dict, ...]:
    out = []
    for path in RULE_FILES:
        if path.exists():
            out.append(yaml.safe_load(path.read_text()) or {})
    return tuple(out)


@cache
def tables() -> tuple[Table, ...]:
    """The generated tables, in contract order, with their catalogue rules."""
    out = []
    docs = _rule_docs()
    for i, m in enumerate(schema_v6.generated_contracts()):
        meta = m["config"]["meta"]
        cols = {}
        for c in m["columns"]:
            cm = (c.get("config") or {}).get("meta") or {}
            cols[c["name"]] = Column(
                c["name"], schema_v6.snake(c["name"]), c["data_type"].split("(")[0].lower(),
                cm.get("format"), cm.get("pattern"), bool(cm.get("mandatory")), cm.get("codes"),
            )  # fmt: skip
        t = Table(i, m["name"], meta["idb_table"], meta["epr_table"], list(meta["key"]), meta["scope"],
                  list(meta.get("parents") or []), cols)  # fmt: skip
        seen = set()
        for doc in docs:
            for r in doc.get("rules") or []:
                if r.get("table") == t.idb and r["id"] not in seen:
                    seen.add(r["id"])
                    t.rules.append(r)
            for col, rid in ((doc.get("format_rules") or {}).get(t.idb) or {}).items():
                if rid not in seen:
                    seen.add(rid)
                    t.rules.append({"id": rid, "table": t.idb, "column": col, "check": {"type": "format"}})
        out.append(t)
    return tuple(out)


def _seed_codes(seed: str) -> list[str] | None:
    for path in (SEEDS / f"{seed}.csv", SEEDS / "v6" / f"{seed}.csv"):
        if path.exists():
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            col = "code" if rows and "code" in rows[0] else (next(iter(rows[0])) if rows else "code")
            codes = sorted({r[col] for r in rows if r.get(col) and r.get("vodim_category") != "default"})
            return codes or None
    return None


def code_list(t: Table, column: str) -> tuple[list[str], bool]:
    """(valid codes, whether a rule checks them): the column's ``meta.codes`` seed, else the seed of
    the catalogue's code_list rule on it, else :data:`PLACEHOLDER_CODES`."""
    c = t.columns[column]
    rules = t.rules_of("code_list", column)
    for seed in (c.codes_seed, *(r["check"].get("seed") for r in rules)):
        if seed:
            codes = _seed_codes(seed)
            if codes:
                return [x for x in codes if _fits(c, x)] or codes, bool(rules)
    return [x for x in PLACEHOLDER_CODES if _fits(c, x)] or [_pad(c, "1")], bool(rules)


def parse_format(fmt: str | None) -> tuple[str, int, int]:
    """v6 format text -> (kind an|n, min length, max length); (\"\", 0, 0) when none."""
    if not fmt:
        return "", 0, 0
    m = re.fullmatch(r"(?:min (an|n)(\d+) )?max (an|n)(\d+)", fmt.strip())
    if m:
        return m.group(3), int(m.group(2) or 1), int(m.group(4))
    m = re.fullmatch(r"(an|n)(\d+)", fmt.strip())
    if m:
        return m.group(1), int(m.group(2)), int(m.group(2))
    return "", 0, 0


def _fits(c: Column, value: str) -> bool:
    kind, lo, hi = parse_format(c.fmt)
    if not kind:
        return True
    if c.data_type == "integer":
        return value.isdigit() and int(value) < 10**hi
    return lo <= len(value) <= hi and (kind == "an" or value.isdigit())


def _pad(c: Column, value: str) -> str:
    _, lo, _ = parse_format(c.fmt)
    return value.rjust(lo, "0")


# ------------------------------------------------------------------------------ values


def _sctids() -> list[str]:
    path = SEEDS / "ref_snomed_intervention_valueset.csv"
    with path.open(newline="") as fh:
        codes = sorted({r["concept_id"] for r in csv.DictReader(fh)})
    return codes[:40]


def time_text(seconds: np.ndarray | int) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def key_text(t: Table, row: dict) -> str:
    """The MHSDS row key as the rule engine writes it (key columns joined by '|', NULL -> '')."""
    parts = []
    for k in t.key:
        v = row.get(k)
        c = t.columns[k]
        if v is None:
            parts.append("")
        elif c.data_type == "date":
            parts.append(str(np.datetime64(v, "D")))
        elif c.data_type == "timestamp":
            parts.append(str(np.datetime64(v, "s")).replace("T", " "))
        else:
            parts.append(str(v))
    return "|".join(parts)


# ------------------------------------------------------------------------------ generator


@dataclass
class Defect:
    rule: str
    table: Table
    row: dict
    column: str | None
    only_month: int | None  # None: every period the row is extracted in
    upto: bool = False  # only_month means: that month and every earlier one


@dataclass
class Anchor:
    """One parent a row hangs off: ids of the existing parents it links to and its date range."""

    ids: dict[str, int]  # anchor kind -> integer id (patient, referral, ...)
    lo: np.datetime64  # first day a child date may take (day after the parent's start)
    hi: np.datetime64  # first day it may not (the parent's end day, or NaT: open)
    team: int = 0
    clinician: int = -1
    mask_src: tuple[str, int] | None = None  # for scope kind "parent": (by_table name, int id)
    open: bool = False  # the parent has no end (or ends after the window)


def ward_code_masks(wm: dict, by_ward_stay: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(ward index, OR of the period masks of the ward stays on it)."""
    from mhsds_pipeline.synthetic.scope import lookup

    masks = lookup(*by_ward_stay, wm["ward_stay_id"].astype(np.int64))
    return or_by_key(wm["ward_code"].astype(np.int64), masks)


def _test_nhs_number(rng: np.random.Generator) -> str:
    """A valid NHS number (Modulus 11) from the 999 test range."""
    from mhsds_pipeline.identifiers import nhs_number_check_digit

    while True:
        body = "999" + "".join(str(int(x)) for x in rng.integers(0, 10, 6))
        check = nhs_number_check_digit(body)
        if check is not None:
            return body + str(check)


def _time_twin_of(t: Table, date_col: str) -> str | None:
    """The time item paired with a date item (EndDateX -> EndTimeX), if the table has one."""
    cand = date_col.replace("Date", "Time", 1)
    return cand if cand != date_col and cand in t.columns else None
