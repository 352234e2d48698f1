"""Generate the MHSDS v6 tables the EPR mapping does not hand-build, from NHS England's rules file.

NHS England's v6.0 validation rules file (``expectations/rules/reference/MHSDS_validation_rules_v6.0.csv``)
names, for every table, its data items (UID and IDB element name), which are mandatory (a
"Blank" rule that rejects the record), the parent each group hangs off ("No valid [MHS001]MPI
submitted for this [M401901]LocalPatientID"), the uniqueness key ("More than one ... submitted
for this A + B combination") and which dates must fall in the reporting period. The technical
output specification (ETOS) that holds the formats is not public (reference/mhsds.md 9), so a
column's type and format are inferred from its data item name by the rules below and every
inference is listed in docs/submission.md ("Tables built from the rules file").

This script writes, for each such table (47 of the file's 62; MHS205 has two names in the file):

* ``dbt_project/models/marts/mhsds/_mhsds_v6__models.yml``: the dbt contract (IDB column names,
  order, types, ``meta.format``, ``meta.uid``; table ``meta``: key, parents, period scope, EPR
  source table). It is the definition every other part reads: the source contract, the
  extract scope, the synthetic generator, publication and the package.
* ``dbt_project/models/marts/mhsds/v6/<model>.sql``: one line, the ``mhsds_v6_table()`` macro.
* ``dbt_project/models/staging/epr/_epr_v6__sources.yml``: the EPR source tables.
* ``expectations/rules/mhsds_v6_rules_tables.yml``: the catalogue entries of those tables' rules
  and of the rules on the hand-built tables whose check this script can state from the rule's
  wording (Blank, Format, National Code, dates against the period or each other, parents,
  uniqueness, SNOMED CT checks, national organisation tables). Rules it cannot state stay out
  and are listed by ``--report``.

Run ``python scripts/v6_tables.py`` after changing the rules file, the inference below or a code
list seed; ``--check`` fails when the checked-in files differ from what it would write (a test
runs it).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
from mhsds_pipeline.source.schema_v6 import snake  # noqa: E402 - the one IDB -> EPR column rule

RULES_FILE = REPO / "expectations" / "rules" / "reference" / "MHSDS_validation_rules_v6.0.csv"
NAMES_FILE = REPO / "expectations" / "rules" / "reference" / "MHSDS_table_names_v6.0.csv"
DBT = REPO / "dbt_project"
HAND_YAML = DBT / "models" / "marts" / "mhsds" / "_mhsds__models.yml"
OUT_YAML = DBT / "models" / "marts" / "mhsds" / "_mhsds_v6__models.yml"
OUT_MODELS = DBT / "models" / "marts" / "mhsds" / "v6"
OUT_SOURCES = DBT / "models" / "staging" / "epr" / "_epr_v6__sources.yml"
CATALOGUE = REPO / "expectations" / "rules" / "mhsds_v6_rules.yml"
OUT_RULES = REPO / "expectations" / "rules" / "mhsds_v6_rules_tables.yml"
SEEDS = DBT / "seeds" / "reference"
CODE_MAP = REPO / "expectations" / "rules" / "reference" / "code_list_map.csv"

#: Table names the rules file spells two ways: MHS205's two ServiceRequestID rules name
#: "MHS205SDDigitalIntervention", its other twelve "MHS205PatientSDDI" (the IDB name).
TABLE_ALIASES = {"MHS205SDDigitalIntervention": "MHS205PatientSDDI"}

SOURCE_CELL_WHY = (
    "v6 has no code for a row whose EPR cells could not be read at extract; its scope or audit dates "
    "are unknown, so it cannot be shown to be what it claims and is rejected."
)
HEADER_START = "[M000050]ReportingPeriodStartDate"
HEADER_END = "[M000060]ReportingPeriodEndDate"
_ITEM = re.compile(r"\[(M\d{6})\]\s*(\w+)")
_TABLE_REF = re.compile(r"\[(MHS\d{3})\](\w+)")


def model_name(idb_table: str) -> str:
    return f"{idb_table[:6].lower()}_{snake(idb_table[6:])}"


def epr_table(idb_table: str) -> str:
    return snake(idb_table[6:])


@dataclass
class Item:
    uid: str
    name: str  # IDB element
    title: str  # data dictionary element name
    kinds: set[str] = field(default_factory=set)


@dataclass
class NhsRow:
    code: str
    table: str
    element: str
    kind: str  # Blank / Format / National Code / AV
    level: str
    consequence: str
    text: str

    @property
    def body(self) -> str:
        return re.sub(r"^[^-]+ - ", "", self.text).split(". [")[0].rstrip(".")


def read_rules() -> list[NhsRow]:
    out = []
    with RULES_FILE.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            g = {k.replace("\n", " "): v for k, v in row.items()}
            table = TABLE_ALIASES.get(g["Table"], g["Table"])
            out.append(
                NhsRow(
                    g["Error Code"].strip(),
                    table,
                    g["XML ELEMENT NAME"].strip(),
                    g["Generic Validation Type (M/R/F/N)"].strip(),
                    g["Validation Level (File, Group, Record)"].strip(),
                    g["Error Level"].strip(),
                    g["Validation Text with Action"].strip(),
                )  # fmt: skip
            )
    return out


def table_titles() -> dict[str, str]:
    with NAMES_FILE.open(newline="", encoding="utf-8-sig") as fh:
        return {r["TBL_Code"]: r["TBL_Name"] for r in csv.DictReader(fh)}


# ------------------------------------------------------------------------- type inference

#: (regex on the data item name, data_type, v6 format, pattern): first match wins. Evidence in
#: reference/mhsds.md 3.13 where a format was found; the rest follow the hand-built tables'
#: formats for the same kind of item (docs/submission.md lists every inferred format).
_NAME_RULES: tuple[tuple[str, str, str | None, str | None], ...] = (
    (r"TIMESTAMP", "timestamp", None, None),
    (r"^NHS NUMBER$", "varchar", "n10", None),
    (r"^ORGANISATION SITE IDENTIF", "varchar", "min an5 max an9", None),
    (r"^ORGANISATION IDENTIF", "varchar", "min an3 max an6", "ods"),
    (r"\bDATE\b|^OBSERVATION DATE", "date", None, None),
    (
        r"\b(START|END|EXPIRY|ARRIVAL|REQUEST|CREATION|UPDATED|AGREED|REFER|REFERRAL) TIME\b|\bTIME \(",
        "time",
        None,
        None,
    ),
    (r"DURATION|NUMBER OF|BED DAYS|CHARGE", "integer", "max n6", None),
    (r"\(SNOMED CT EXPRESSION\)", "varchar", "min an6 max an512", None),
    (r"\(SNOMED CT\)", "varchar", "min n6 max n18", None),
    (r"\(CODED CLINICAL ENTRY\)|\(ICD\)", "varchar", "max an18", None),
    (r"^PERSON SCORE$", "varchar", "max an5", None),
    (r"WARD CODE", "varchar", "max an12", None),
    (r"SERVICE AGREEMENT LINE", "varchar", "max an10", None),
    (r"IDENTIFIER|LOCAL IDENTIFIER", "varchar", "max an20", None),
    (r"OCCUPATION CODE", "varchar", "an3", None),
    (r"JOB ROLE CODE", "varchar", "max an5", None),
)


def seed_codes(seed: str) -> list[str]:
    for path in (SEEDS / f"{seed}.csv", SEEDS / "v6" / f"{seed}.csv"):
        if path.exists():
            with path.open(newline="") as fh:
                return [r["code"] for r in csv.DictReader(fh) if r.get("code")]
    return []


def code_format(codes: list[str]) -> str:
    lengths = {len(c) for c in codes}
    if not lengths:
        return "max an2"
    return f"an{max(lengths)}" if len(lengths) == 1 else f"max an{max(lengths)}"


def infer(item: Item, seed: str | None) -> tuple[str, str | None, str | None]:
    if seed is not None:
        return "varchar", code_format(seed_codes(seed)), None
    for regex, dtype, fmt, pattern in _NAME_RULES:
        if re.search(regex, item.title):
            return dtype, fmt, pattern
    return "varchar", "max an20", None


# ------------------------------------------------------------------------- per-table facts


@dataclass
class Table:
    idb: str
    title: str
    items: OrderedDict[str, Item] = field(default_factory=OrderedDict)
    rules: list[NhsRow] = field(default_factory=list)

    @property
    def model(self) -> str:
        return model_name(self.idb)

    def mandatory(self) -> set[str]:
        return {r.element for r in self.rules if r.kind == "Blank" and "rejected" in r.consequence.lower()}

    def links(self) -> list[dict]:
        """Every "No valid [MHSnnn]X submitted for this ..." rule: table named and join columns."""
        out = []
        for r in self.rules:
            m = re.match(r"No valid \[(MHS\d{3})\](\w+) submitted for this (.+)", r.body)
            if m:
                cols = [c for _u, c in _ITEM.findall(m.group(3))]
                other = TABLE_ALIASES.get(m.group(1) + m.group(2), m.group(1) + m.group(2))
                out.append({"rule": r.code, "table": other, "columns": cols})
        return out

    def parents(self) -> list[dict]:
        """Links to an earlier table: the parents a row hangs off (scope, generator). A link to a
        later reference table (MHS901 staff) is checked as a reference by the catalogue; one to a
        later table that links back (MHS505 -> MHS515) asks for a child (has_child)."""
        return [p for p in self.links() if p["table"][:6] < self.idb[:6]]

    def unique(self) -> list[dict]:
        out = []
        for r in self.rules:
            m = re.match(r"More than one \[(MHS\d{3})\]\w+ submitted for this (.+)", r.body)
            if m:
                rest = m.group(2)
                where = None
                w = re.search(r"where (?:the )?\[(M\d{6})\]\s*(\w+) is null", rest)
                if w:
                    where = w.group(2)
                    rest = rest[: w.start()]
                cols = [c for _u, c in _ITEM.findall(rest)]
                out.append({"rule": r.code, "columns": cols, "null": where})
        return out

    def key(self) -> list[str]:
        uniq = [u for u in self.unique() if not u["null"]]
        if uniq:
            return max(uniq, key=lambda u: len(u["columns"]))["columns"]
        own = [i.name for i in self.items.values() if re.search(r"IDENTIFIER$", i.title) and i.uid[4] == "0"]
        if own:
            return own[:1]
        return list(self.items)  # no natural key: the whole row

    def scope(self) -> dict:
        """Which EPR rows a period takes. A start date that may not be after the period and an
        end date that may not be before it: rows whose interval overlaps the period (period).
        One date bounded on both sides: rows dated in the period (event). Otherwise the rows
        of parents in scope (a patient's indicators, a referral's other reasons), or every row
        (reference tables with no parent). The extract also takes rows keyed in the period."""
        dates = [i.name for i in self.items.values() if infer(i, None)[0] in ("date", "timestamp")]
        after_end = {r.element for r in self.rules if r.body.endswith(f"is after the {HEADER_END}")}
        before_start = {r.element for r in self.rules if r.body.endswith(f"is before the {HEADER_START}")}
        both = [c for c in dates if c in after_end and c in before_start]
        start = next((c for c in dates if c in after_end and c not in before_start), None)
        ends = [c for c in dates if c in before_start and c != start]
        end = next((c for c in ends if "End" in c), ends[0] if ends else None)
        if start and end:
            return {"kind": "period", "start": start, "end": end}
        if both:
            return {"kind": "event", "date": both[0]}
        parents = self.parents()
        if parents:
            return {"kind": "parent", "table": parents[0]["table"], "columns": parents[0]["columns"]}
        return {"kind": "all"}


def collect(rules: list[NhsRow], only: set[str] | None = None) -> dict[str, Table]:
    titles = table_titles()
    tables: dict[str, Table] = {}
    for r in rules:
        t = tables.setdefault(r.table, Table(r.table, titles.get(r.table[:6], r.table)))
        t.rules.append(r)
        if r.element and not r.element.startswith("MHS"):
            m = re.search(r"\[(M\d{6})\]\s*" + re.escape(r.element) + r"\b", r.text)
            uid = m.group(1) if m else "M000000"
            item = t.items.setdefault(r.element, Item(uid, r.element, ""))
            item.kinds.add(r.kind)
    # data item titles: the file's "Data Item Name" column
    with RULES_FILE.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            table = TABLE_ALIASES.get(row["Table"], row["Table"])
            el = row["XML ELEMENT NAME"].strip()
            if table in tables and el in tables[table].items:
                tables[table].items[el].title = row["Data Item Name (Data Dict Element)"].strip().upper()
    if only is not None:
        tables = {k: v for k, v in tables.items() if k in only}
    return tables


def hand_built() -> dict[str, str]:
    doc = yaml.safe_load(HAND_YAML.read_text())
    return {m["config"]["meta"]["idb_table"]: m["name"] for m in doc["models"]}


def code_map() -> dict[str, str]:
    """error code -> seed of the column's national codes (reference/code_list_map.csv)."""
    if not CODE_MAP.exists():
        return {}
    with CODE_MAP.open(newline="") as fh:
        return {r["error_code"]: r["seed"] for r in csv.DictReader(fh)}


def default_only(seed: str) -> bool:
    """A seed holding only default codes (ZZ99 postcodes, R9998 sites): the column's valid values
    are national tables (ONS postcodes, ODS sites), not a code list."""
    for path in (SEEDS / f"{seed}.csv", SEEDS / "v6" / f"{seed}.csv"):
        if path.exists():
            with path.open(newline="") as fh:
                cats = {r.get("vodim_category", "") for r in csv.DictReader(fh)}
            return cats == {"default"}
    return False


def column_seeds(table: Table, cmap: dict[str, str]) -> dict[str, str]:
    out = {}
    for r in table.rules:
        if r.kind == "National Code" and r.code in cmap and "invalid national code" in r.body:
            if not default_only(cmap[r.code]):
                out[r.element] = cmap[r.code]
    return out


# ------------------------------------------------------------------------- writers


def contract_yaml(tables: dict[str, Table], cmap: dict[str, str]) -> str:
    models = []
    for t in sorted(tables.values(), key=lambda t: t.idb):
        seeds = column_seeds(t, cmap)
        mandatory = t.mandatory()
        cols = []
        for item in t.items.values():
            dtype, fmt, pattern = infer(item, seeds.get(item.name))
            meta = {"uid": item.uid}
            if fmt:
                meta["format"] = fmt
            if pattern:
                meta["pattern"] = pattern
            if item.name in mandatory:
                meta["mandatory"] = True
            if item.name in seeds:
                meta["codes"] = seeds[item.name]
            cols.append(
                {
                    "name": item.name,
                    "data_type": dtype,
                    "quote": True,
                    "config": {"meta": meta},
                    "description": f"{item.uid} {item.title}. <- {epr_table(t.idb)}.{snake(item.name)}.",
                }
            )
        parents = [{"table": p["table"], "columns": p["columns"]} for p in t.parents()]
        meta = {
            "idb_table": t.idb,
            "key": t.key(),
            "epr_table": epr_table(t.idb),
            "scope": t.scope(),
            "generated": "scripts/v6_tables.py",
        }
        if parents:
            meta["parents"] = parents
        models.append(
            {
                "name": t.model,
                "description": (
                    f"{t.idb}: {t.title}. Built from the v6.0 rules file's data items (scripts/v6_tables.py); "
                    f"one row per extracted {epr_table(t.idb)} row."
                ),
                "config": {"contract": {"enforced": True}, "meta": meta},
                "columns": cols,
            }
        )
    head = (
        "# GENERATED by scripts/v6_tables.py from NHS England's v6.0 rules file: do not edit by hand.\n"
        "# The MHSDS tables the EPR mapping does not hand-build (_mhsds__models.yml holds those).\n"
        "# Column order = the order the rules file lists the data items; types and formats are\n"
        "# inferred from the data item names (docs/submission.md 'Tables built from the rules file').\n"
    )
    return head + yaml.safe_dump({"version": 2, "models": models}, sort_keys=False, width=120)


def sources_yaml(tables: dict[str, Table]) -> str:
    src = []
    for t in sorted(tables.values(), key=lambda t: t.idb):
        src.append(
            {
                "name": epr_table(t.idb),
                "description": f"EPR {t.title} records ({t.idb}); columns = the IDB items in snake case plus recorded_at.",
            }
        )
    head = "# GENERATED by scripts/v6_tables.py: the EPR tables behind the generated MHSDS tables.\n"
    doc = {"version": 2, "sources": [{"name": "epr_v6", "schema": "raw_epr", "tables": src}]}
    return head + yaml.safe_dump(doc, sort_keys=False, width=120)


# ------------------------------------------------------------------------- catalogue


def _dims(kind: str) -> str:
    return {"Blank": "completeness", "Format": "conformance", "National Code": "validity"}.get(
        kind, "consistency"
    )


def catalogue_entries(
    tables: dict[str, Table], existing: set[str], cmap: dict[str, str], items_by_table: dict[str, set[str]]
) -> tuple[list[dict], list[tuple[str, str]], dict[str, dict[str, str]]]:
    """(rule entries, rules left out with why, format_rules map)."""
    entries: list[dict] = []
    skipped: list[tuple[str, str]] = []
    formats: dict[str, dict[str, str]] = {}
    for t in sorted(tables.values(), key=lambda t: t.idb):
        cols = items_by_table.get(t.idb, set())
        for r in t.rules:
            if r.code in existing:
                continue
            body = r.body
            base = {"id": r.code, "table": t.idb}
            if r.element and r.element != t.idb and not r.element.startswith("MHS"):
                if r.element not in cols:
                    skipped.append((r.code, f"{t.idb} has no column {r.element}"))
                    continue
                base["column"] = r.element
            base["dimension"] = _dims(r.kind)
            check = rule_check(r, t, cmap, tables, items_by_table)
            if check is None:
                skipped.append((r.code, body))
                continue
            if check == "format":
                formats.setdefault(t.idb, {})[r.element] = r.code
                continue
            entry = {**base, "check": check}
            national = _national_context(check)
            if national:  # judged before upload against a configured stand-in for SDCS's own context
                entry["reference"] = national
            entries.append(entry)
    return entries, skipped, formats


def _national_context(check: dict) -> str | None:
    """What a rule that needs the national system's context is judged against here."""
    if check["type"] == "org_live":
        return (
            "ODS organisations seed ref_ods_organisations (scripts/ods_seed.py), not SDCS's national tables"
        )
    if check["type"] == "after_upload":
        return "the time the gate runs (the upload is later), not the Submission Portal's upload date"
    if check["type"] == "fail_when" and "{org_id_submit}" in check["sql"]:
        return "the configured submitting organisation (MHSDS_ORG_ID_SUBMIT), not the portal login"
    return None


def _join_columns(t: Table, other: str, named: list[str], cols: dict[str, set[str]]) -> list[str] | None:
    """The columns joining ``t`` to ``other``: those the rule names, or where the other table
    lacks one (MHS515's rule names RestrictiveIntTypeID, which MHS505 does not hold) the
    identifiers both tables share."""
    mine, theirs = cols.get(t.idb, set()), cols.get(other, set())
    if named and all(c in mine and c in theirs for c in named):
        return named
    shared = sorted(c for c in mine & theirs if c.endswith("ID"))
    return shared or None


def _path_to(t: Table, prefix: str, every: dict[str, Table], cols: dict[str, set[str]]) -> list[dict] | None:
    """Parent links from ``t`` up to the table numbered ``prefix`` (one or two hops)."""

    def hops(table: Table) -> list[tuple[str, list[str]]]:
        out = []
        for p in table.parents():
            jc = _join_columns(table, p["table"], p["columns"], cols)
            if jc:
                out.append((p["table"], jc))
        return out

    for parent, jc in hops(t):
        if parent[:6] == prefix:
            return [{"table": parent, "columns": {c: c for c in jc}}]
    for parent, jc in hops(t):
        if parent in every:
            for grand, jc2 in hops(every[parent]):
                if grand[:6] == prefix:
                    return [{"table": parent, "columns": {c: c for c in jc}},
                            {"table": grand, "columns": {c: c for c in jc2}}]  # fmt: skip
    return None


def rule_check(
    r: NhsRow, t: Table, cmap: dict[str, str], every: dict[str, Table], cols: dict[str, set[str]]
) -> dict | str | None:
    body = r.body
    col = r.element
    if r.kind == "Blank":
        return {"type": "not_null"}
    if r.kind == "Format":
        return "format"
    if body.endswith("contains an invalid national code value") or body.endswith(
        "contains an invalid national code"
    ):
        seed = cmap.get(r.code)
        if seed and default_only(seed):
            return None  # needs the ONS postcode directory / ODS sites (docs/submission.md)
        return {"type": "code_list", "seed": seed} if seed else None
    if "is not for a current live organisation in national tables" in body:
        return {"type": "org_live"}
    if "was not live in national tables at any point during the reporting period" in body:
        return {"type": "org_live", "during_period": True}
    if body.endswith(f"is before the {HEADER_START}"):
        return {"type": "date_in_period", "bound": "start"}
    if body.endswith(f"is after the {HEADER_END}"):
        return {"type": "date_in_period", "bound": "end"}
    m = re.match(r"\[M\d{6}\]\s*(\w+) is (before|after) the associated \[(M\d{6})\]\s*(\w+)$", body)
    if m:
        this, rel, uid, other = m.groups()
        if other in t.items:
            before, after = (other, this) if rel == "before" else (this, other)
            chk = {"type": "date_order", "before": before, "after": after}
            for side, name in (("before_time", before), ("after_time", after)):
                tm = _time_twin(t, name)
                if tm:
                    chk[side] = tm
            return chk
        path = _path_to(t, "MHS" + uid[1:4], every, cols)
        if path is None:
            return None
        return {"type": "parent_date_order", "column": this, "relation": rel, "other": other, "path": path}
    m = re.match(r"No valid \[(MHS\d{3})\](\w+) submitted for this (.+)", body)
    if m:
        other = TABLE_ALIASES.get(m.group(1) + m.group(2), m.group(1) + m.group(2))
        link_cols = _join_columns(t, other, [c for _u, c in _ITEM.findall(m.group(3))], cols)
        if link_cols is None:
            return None
        back = other in every and any(p["table"] == t.idb for p in every[other].links())
        if back and other[:6] > t.idb[:6]:  # mutual (MHS505 <-> MHS515): the later table is the child
            return {"type": "has_child", "child": other, "columns": {c: c for c in link_cols}}
        return {"type": "references", "parent": other, "columns": {c: c for c in link_cols}}
    m = re.match(r"More than one \[(MHS\d{3})\]\w+ submitted for this (.+)", body)
    if m:
        rest = m.group(2)
        where = None
        w = re.search(r"where (?:the )?\[(M\d{6})\]\s*(\w+) is null", rest)
        if w:
            where = f"{w.group(2)} IS NULL"
            rest = rest[: w.start()]
        cols = [c for _u, c in _ITEM.findall(rest)]
        chk = {"type": "unique", "columns": cols}
        if where:
            chk["where"] = where
        return chk
    if body.endswith("has failed SNOMED CT checks"):
        return {"type": "sctid", "partitions": ["00", "10"]}
    if "has no assessment tools currently in scope" in body:
        return {"type": "always"}
    m = re.match(r"\[M\d{6}\]\s*(\w+) is (before|after) the \[(M\d{6})\]\s*(\w+)$", body)
    if m:  # the same comparisons worded without "associated"
        this, rel, uid, other = m.groups()
        if other == "DateTimeDatSetCreate":
            return {"type": "after_dataset_created"} if rel == "after" else None
        if other in t.items:
            before, after = (other, this) if rel == "before" else (this, other)
            return {"type": "date_order", "before": before, "after": after}
        path = _path_to(t, "MHS" + uid[1:4], every, cols)
        if path is None:
            return None
        return {"type": "parent_date_order", "column": this, "relation": rel, "other": other, "path": path}
    if "indicates the person is outside of the 0-130 years age range" in body:
        return {"type": "age_range", "min_years": 0, "max_years": 130}
    m = re.match(
        r"\[M\d{6}\]\s*(\w+) (?:is populated but the )?format does not match expected format from (?:selected )?\[M\d{6}\]\s*(\w+)$",
        body,
    )
    if m:
        scheme = m.group(2)
        # DIAGNOSIS SCHEME IN USE: 02 ICD-10, 06 SNOMED CT; FINDING SCHEME IN USE: 01 ICD-10, 04 SNOMED CT
        codes = (
            {"icd10_code": "02", "snomed_code": "06"}
            if scheme == "DiagSchemeInUse"
            else {"icd10_code": "01", "snomed_code": "04"}
        )
        return {"type": "diagnosis_code", "scheme_column": scheme, **codes}
    if body.endswith("is not in the associated reference table") and col == "CodedAssToolType":
        return {
            "type": "value_set",
            "seed": "ref_assessment_tools",
            "seed_column": "concept_id",
            "require_valid_sctid": False,
        }
    if "contains an invalid person score for the coded assessment tool type" in body:
        return {"type": "score_range", "tool_column": "CodedAssToolType", "seed": "ref_assessment_tools"}
    if "does not match the Organisation Identifier from the Submission Portal login details" in body:
        return {"type": "fail_when", "sql": f"{col} <> {{org_id_submit}}"}
    if body.endswith("does not match [M000080]OrgIDProvider"):
        return {"type": "fail_when", "sql": f"{col} <> {{org_id_provider}}"}
    if "is after the Upload Date in the Submission Portal" in body:
        return {"type": "after_upload"}
    m = re.match(r"\[M\d{6}\]\s*(\w+) is blank but \[M\d{6}\]\s*(\w+) is populated$", body)
    if m:
        return {"type": "fail_when", "sql": f"{m.group(1)} IS NULL AND {m.group(2)} IS NOT NULL"}
    m = re.match(
        r"\[M\d{6}\]\s*(\w+) is populated but code (\d+) has been submitted for \[M\d{6}\]\s*(\w+)$", body
    )
    if m:
        return {"type": "fail_when", "sql": f"{m.group(1)} IS NOT NULL AND {m.group(3)} = '{m.group(2)}'"}
    m = re.match(
        r"\[M\d{6}\]\s*(\w+) is blank but \[M\d{6}\]\s*(\w+) is populated with code (\d+) or code (\d+)$",
        body,
    )
    if m:
        return {
            "type": "fail_when",
            "sql": f"{m.group(1)} IS NULL AND {m.group(2)} IN ('{m.group(3)}', '{m.group(4)}')",
        }
    m = re.match(
        r"\[M\d{6}\]\s*(\w+) is populated but \[M\d{6}\]\s*(\w+) has been populated with '(\w)'", body
    )
    if m:
        return {"type": "fail_when", "sql": f"{m.group(1)} IS NOT NULL AND {m.group(2)} = '{m.group(3)}'"}
    return None


def _time_twin(t: Table, date_col: str) -> str | None:
    cand = date_col.replace("Date", "Time", 1)
    return cand if cand != date_col and cand in t.items else None


def rules_yaml(entries: list[dict], formats: dict[str, dict[str, str]], order: list[str]) -> str:
    head = (
        "# GENERATED by scripts/v6_tables.py: part of the rules catalogue (mhsds_v6_rules.yml includes it).\n"
        "# Each entry's check is stated from the wording of NHS England's v6.0 rule; level, consequence\n"
        "# and message come from the rules file as for every coded rule. Do not edit by hand: change the\n"
        "# script (or hand-write the rule in mhsds_v6_rules.yml, which then takes precedence).\n"
    )
    first = [t for t in order if t.startswith("MHS9") and t != "MHS903WardDetails"]
    lines = [head, "# reference tables without parents: right after the header (others reference them)"]
    lines += ["cascade_order_head:"] + [f"  - {t}" for t in first]
    lines += ["cascade_order_tail:"] + [f"  - {t}" for t in order if t not in first]
    lines.append("format_rules:")
    for table in sorted(formats):
        lines.append(f"  {table}:")
        for col, code in formats[table].items():
            lines.append(f"    {col}: {code}")
    lines.append("rules:")
    for e in entries:
        lines.append(
            "  - " + yaml.safe_dump(e, default_flow_style=True, sort_keys=False, width=10_000).strip()
        )
    return "\n".join(lines) + "\n"


def cascade_tail(tables: dict[str, Table]) -> list[str]:
    """Generated tables, parents first (a table after every table it references)."""
    done: list[str] = [t for t in sorted(tables) if t.startswith("MHS9") and not tables[t].parents()]
    pending = [t for t in sorted(tables) if t not in done]
    while pending:
        for name in pending:
            deps = {p["table"] for p in tables[name].parents()} & set(tables)
            if deps <= set(done):
                done.append(name)
                pending.remove(name)
                break
        else:
            raise SystemExit(f"parent cycle among {pending}")
    return done


# ------------------------------------------------------------------------- main


def build() -> dict[Path, str]:
    rules = read_rules()
    hand = hand_built()
    every = collect(rules)
    generated = {k: v for k, v in every.items() if k not in hand}
    cmap = code_map()
    doc = yaml.safe_load(CATALOGUE.read_text())
    existing = {r["id"] for r in doc["rules"]} | {c for m in doc["format_rules"].values() for c in m.values()}
    hand_doc = yaml.safe_load(HAND_YAML.read_text())
    items_by_table = {
        m["config"]["meta"]["idb_table"]: {c["name"] for c in m["columns"]} for m in hand_doc["models"]
    }
    for t in generated.values():
        items_by_table[t.idb] = set(t.items)
    entries, skipped, formats = catalogue_entries(every, existing, cmap, items_by_table)
    for t in sorted(generated.values(), key=lambda t: t.idb):  # as every hand-built table has
        entries.append(
            {
                "id": f"LOCAL_{t.idb[:6]}_SOURCE_CELL",
                "table": t.idb,
                "consequence": "Record rejected",
                "dimension": "validity",
                "check": {"type": "source_cell"},
                "message": "An EPR cell of this row could not be read at extract (not its type)",
                "why": SOURCE_CELL_WHY,
            }
        )
    files = {
        OUT_YAML: contract_yaml(generated, cmap),
        OUT_SOURCES: sources_yaml(generated),
        OUT_RULES: rules_yaml(entries, formats, cascade_tail(generated)),
    }
    for t in generated.values():
        files[OUT_MODELS / f"{t.model}.sql"] = (
            f"-- {t.idb}: generated by scripts/v6_tables.py; the columns are the contract's "
            "(_mhsds_v6__models.yml).\n{{ mhsds_v6_table() }}\n"
        )
    build.skipped = skipped  # type: ignore[attr-defined]
    return files


def coverage_table() -> str:
    """Per table: rules in NHS England's v6.0 file and rules the catalogue evaluates, by kind."""
    from mhsds_pipeline.quality.rules import load_catalogue

    rules = read_rules()
    evaluated = {r.id for r in load_catalogue().rules}
    hand = hand_built()
    rows = {}
    for r in rules:
        row = rows.setdefault(r.table, {"file": 0, "ours": 0, "kinds": {}})
        row["file"] += 1
        if r.code in evaluated:
            row["ours"] += 1
        k = row["kinds"].setdefault(r.kind, [0, 0])
        k[0] += 1
        k[1] += r.code in evaluated
    out = [
        "| table | built | rules in file | evaluated | Blank | Format | National Code | AV |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for table in sorted(rows, key=lambda t: (t[:6], t)):
        row = rows[table]
        cells = [
            f"{row['kinds'].get(k, [0, 0])[1]}/{row['kinds'].get(k, [0, 0])[0]}"
            for k in ("Blank", "Format", "National Code", "AV")
        ]
        built = "by hand" if table in hand else "generated"
        out.append(f"| {table} | {built} | {row['file']} | {row['ours']} | " + " | ".join(cells) + " |")
    total_file = sum(r["file"] for r in rows.values())
    total_ours = sum(r["ours"] for r in rows.values())
    out.append(f"| **all {len(rows)} tables** | | **{total_file}** | **{total_ours}** | | | | |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the checked-in files differ")
    ap.add_argument("--report", action="store_true", help="list the rules left out and why")
    ap.add_argument("--coverage", action="store_true", help="rules evaluated per table, as a Markdown table")
    args = ap.parse_args(argv)
    files = build()
    if args.coverage:
        print(coverage_table())
        return 0
    if args.report:
        for code, why in build.skipped:  # type: ignore[attr-defined]
            print(f"{code}\t{why}")
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if args.check:
        if stale:
            print(
                "out of date (run python scripts/v6_tables.py):",
                *[str(p.relative_to(REPO)) for p in stale],
                sep="\n  ",
            )
            return 1
        return 0
    OUT_MODELS.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        if path in stale:
            path.write_text(text)
    keep = {p.name for p in files if p.parent == OUT_MODELS}
    for old in OUT_MODELS.glob("*.sql"):
        if old.name not in keep:
            old.unlink()
    print(f"{len(files)} files, {len(stale)} written; {len(build.skipped)} rules left out")  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
