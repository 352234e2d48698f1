"""The MHSDS validation rules catalogue (its SQL: :mod:`mhsds_pipeline.quality.rule_sql`).

The catalogue (``expectations/rules/mhsds_v6_rules.yml``) is the single statement of what the
quality gate enforces. Each rule compiles here into a *failing-row predicate* over one MHSDS
mart (alias ``t``), in SQL that both DuckDB and PostgreSQL run, so the warehouse does the work:
the rule engine (:mod:`mhsds_pipeline.quality.engine`) inserts the keys of failing rows into a
table, and the GX suites (:mod:`mhsds_pipeline.quality.gx_suites`) validate the same rules.

Check types (``check.type``):

=================  =======================================================================
not_null           the column is blank
code_list          a value not in the seed's code list (``seed``, column ``code``)
code_list_default  a value the seed marks ``vodim_category = default`` (e.g. ethnicity 99)
pattern            a value not matching ``regex`` (whole value)
nhs_number         not 10 digits passing Modulus 11, or a dummy number
sctid              not a valid SCTID (6-18 digits, no leading 0, ``partitions``, Verhoeff)
value_set          a valid SCTID not in ``seed.seed_column`` (``require_valid_sctid: false``:
                   any value not in it)
score_range        PersScore not a whole number in the tool's [min_score, max_score]
date_in_period     a date before ``rp_start`` (bound start), after ``rp_end`` (end) or either;
                   ``grace_days`` moves the end bound (MHS10130: "end plus 24 hours")
date_order         ``after`` earlier than ``before`` (with times when both are given)
unique             rows whose ``columns`` occur more than once (all of them fail); ``where``:
                   only rows meeting that condition count
references         no *valid* parent row: the parent is missing or was itself rejected
has_child          no child row at all in ``child``
row_count          the table's row count outside [min, max] (table-level)
fail_when          a portable SQL condition; column names are quoted automatically,
                   ``{rp_start}``, ``{rp_end}``, ``{org_id_provider}`` are substituted
source_cell        an EPR cell of the row that feeds no column with a format rule could not be
                   read at extract (wrong type, impossible date; see mhsds_pipeline.source_cells)
format             the value breaks the column's v6 format (``format``, ``data_type``,
                   ``pattern``; see :mod:`mhsds_pipeline.formats`): wrong length, a control
                   character or line break, not digits for ``n``, not an ODS code, a year
                   outside 1-9999 or a fraction of a second
parent_date_order  the row's date is before / after (``relation``) a parent's ``other`` date,
                   through the parent links of ``path`` (one or two hops)
org_live           an organisation code not in the ODS seed (``ref_ods_organisations``), or one
                   closed by the period end (``during_period``: closed before its start)
after_dataset_created  a date after the header's DateTimeDatSetCreate
after_upload       a creation time in the future (the upload is later than the run)
age_range          an age at the period end outside [``min_years``, ``max_years``]
always             every row (MHS608: no assessment tools are in scope)
diagnosis_code     the code does not have the format of its ``scheme_column``: ICD-10
                   (``icd10_code``, default ``02``) or a valid SNOMED CT SCTID (``snomed_code``,
                   default ``06``; FINDING SCHEME IN USE says ``01`` / ``04``)
=================  =======================================================================

Format rules are not written out one by one: the catalogue's ``format_rules`` maps each
table's columns to the v6.0 rules file's "Format" error code, and :func:`load_catalogue`
expands them into ``format`` rules with the format each dbt contract column declares, so
lengths and formats are stated once (in the contracts) and every published column is checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.quality.nhs_rules import NhsRule, load_nhs_rules, normalise_consequence
from mhsds_pipeline.quality.results import CheckResult

# The SQL of each check (re-exported: the rule engine, GX and the tests import it from here).
from mhsds_pipeline.quality.rule_sql import (  # noqa: F401
    HEADER_TABLE,
    ODS_SEED,
    ROW_REJECTING,
    SEEDS,
    CatalogueError,
    SqlContext,
    _format_fails,
    existing_tables,
    fail_predicate,
    failing_rows_sql,
    in_list,
    lit,
    parent_cause,
    q,
    seed_codes,
    seed_rows,
    tool_ranges,
)

REPO = Path(__file__).resolve().parents[3]
CATALOGUE = REPO / "expectations" / "rules" / "mhsds_v6_rules.yml"
DBT_PROJECT = REPO / "dbt_project"

#: The one severity vocabulary (STYLE.md): what happens to the data, in NHS England's words.
SEVERITIES = ("file rejected", "group rejected", "record rejected", "severity 1 warning", "warning", "info")


@dataclass(frozen=True)
class Rule:
    """One rule: NHS England's definition (code, level, consequence, message) and our check.

    ``table`` is the IDB table name people see everywhere; ``model`` is the warehouse relation
    (dbt model) its SQL reads, mapped from the dbt contracts' ``meta.idb_table``.
    """

    id: str
    table: str
    model: str
    consequence: str  # NHS England's spelling: Record rejected, Severity 1 Warning, ...
    level: str  # File / Group / Record
    dimension: str
    check: dict[str, Any]
    message: str  # the message text, with <Item> placeholders for values
    column: str | None = None
    why: str | None = None  # local rules: why the rule exists without an NHS code
    value_items: tuple[tuple[str, str], ...] = ()  # (item id, column) the message shows

    @property
    def nhs(self) -> bool:
        return not self.id.startswith("LOCAL_")

    @property
    def severity(self) -> str:
        """What happens to the data. A rejected header row rejects the whole file."""
        if self.table == HEADER_TABLE and self.consequence.endswith("rejected"):
            return "file rejected"
        return self.consequence.lower()

    @property
    def description(self) -> str:
        return self.message

    def filled(self, values: dict[str, object], missing: str | None = None) -> str:
        """The message with its ``<Item>`` placeholders filled from ``values`` (a row); an item
        not given keeps its placeholder, or becomes ``missing`` when that is given. Callers
        withhold identifiers (see quality.sdcs)."""

        def fill(m: re.Match) -> str:
            if m.group(1) in values:
                return str(values[m.group(1)])
            return m.group(0) if missing is None else missing

        return re.sub(r"<(\w+)>", fill, self.message)

    @property
    def text(self) -> str:
        """The message without its ``[Mnnnnnn]Item=<Item>`` value parts (for errors and logs)."""
        return re.sub(r"\s*\[M\d{6}\]\w+=<\w+>", "", self.message).strip()

    @property
    def type(self) -> str:
        return self.check["type"]

    @property
    def rejects_rows(self) -> bool:
        return self.severity in ROW_REJECTING

    @property
    def blocks(self) -> bool:
        """A failure stops publication (the file would be rejected)."""
        return self.severity == "file rejected"

    @property
    def table_level(self) -> bool:
        return self.type == "row_count"

    @property
    def suite(self) -> str:
        return f"marts__{self.table}"

    def result(self, status: str, **fields: Any) -> CheckResult:
        """This rule's dq_results row (the rule's identity filled in; counts etc. in ``fields``)."""
        base: dict[str, Any] = {
            "check_id": self.id,
            "source": "mhsds_rule" if self.nhs else "local_rule",
            "suite": self.suite,
            "table_name": self.table,
            "column_name": self.column,
            "dimension": self.dimension,
            "severity": self.severity,
            "blocks": self.blocks,
            "description": self.message,
        }
        return CheckResult(status=status, **{**base, **fields})


@dataclass(frozen=True)
class Catalogue:
    version: str
    spec_version: str
    rules: tuple[Rule, ...]
    cascade_order: tuple[str, ...]  # IDB table names, parents before children
    mandatory_tables: tuple[str, ...]  # IDB table names
    block_rejected_share: float
    models: dict[str, str]  # IDB table name -> warehouse relation (dbt model)
    block_min_rows: int = 0
    path: Path = field(default=CATALOGUE)

    def for_table(self, table: str) -> list[Rule]:
        return [r for r in self.rules if r.table == table]

    def model(self, table: str) -> str:
        return self.models[table]

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def idb_tables(dbt_project_dir: Path = DBT_PROJECT) -> dict[str, str]:
    """IDB table name -> warehouse relation: the one mapping, read from the dbt contracts."""
    return {c.idb_table: model for model, c in load_contracts(dbt_project_dir).items()}


@cache
def load_catalogue(path: Path = CATALOGUE, dbt_project_dir: Path = DBT_PROJECT) -> Catalogue:
    """The catalogue (cached: it is read-only data, loaded once per process)."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text())
    nhs = load_nhs_rules((path.parent / doc["nhs_rules_file"]).resolve())
    models = idb_tables(Path(dbt_project_dir))
    _include(doc, path)
    order = tuple(doc["cascade_order"])
    for table in order:
        if table not in models:
            raise CatalogueError(f"{path}: cascade_order names {table}, which no dbt contract builds")
    rules = []
    seen: set[str] = set()
    for raw in [*doc["rules"], *_format_rules(doc, Path(dbt_project_dir), path)]:
        rule = _rule(raw, nhs, models, path)
        if rule.id in seen:
            raise CatalogueError(f"rule {rule.id} is defined twice in {path}")
        if rule.table not in order:
            raise CatalogueError(f"rule {rule.id}: table {rule.table} is not in cascade_order")
        seen.add(rule.id)
        rules.append(rule)
    mandatory = tuple(doc.get("mandatory_tables", ()))
    if unknown := [t for t in mandatory if t not in order]:
        raise CatalogueError(f"{path}: mandatory_tables {unknown} are not in cascade_order")
    return Catalogue(
        version=str(doc["version"]),
        spec_version=str(doc["spec_version"]),
        rules=tuple(rules),
        cascade_order=order,
        mandatory_tables=mandatory,
        block_rejected_share=float(doc.get("block_rejected_share", 1.0)),
        models={t: models[t] for t in order},
        block_min_rows=int(doc.get("block_min_rows", 0)),
        path=path,
    )


def _include(doc: dict, path: Path) -> None:
    """Merge the catalogue parts ``include`` names (the generated mhsds_v6_rules_tables.yml):
    their rules and format codes join this file's, their tables follow its cascade_order. An
    entry of this file wins over a generated entry with the same code."""
    for name in doc.get("include") or ():
        part = yaml.load(
            (path.parent / name).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )  # noqa: S506
        own = {r["id"] for r in doc["rules"]} | {
            code for cols in (doc.get("format_rules") or {}).values() for code in cols.values()
        }
        doc["rules"] = [*doc["rules"], *(r for r in part.get("rules") or () if r["id"] not in own)]
        formats = doc.setdefault("format_rules", {})
        for table, cols in (part.get("format_rules") or {}).items():
            mine = formats.setdefault(table, {})
            for column, code in cols.items():
                if code not in own:
                    mine.setdefault(column, code)
        head = [t for t in part.get("cascade_order_head") or () if t not in doc["cascade_order"]]
        order = [*doc["cascade_order"][:1], *head, *doc["cascade_order"][1:]]  # after the header
        doc["cascade_order"] = [*order, *(t for t in part.get("cascade_order_tail") or () if t not in order)]


def _rule(raw: dict, nhs: dict[str, NhsRule], models: dict[str, str], path: Path) -> Rule:
    rid, table, column = raw["id"], raw["table"], raw.get("column")
    if table not in models:
        raise CatalogueError(f"rule {rid}: {table} is not an IDB table any dbt contract builds")
    check = dict(raw["check"])
    for key in ("parent", "child"):  # check parameters naming tables: SQL reads the relations
        if key in check:
            if check[key] not in models:
                raise CatalogueError(f"rule {rid}: {key} {check[key]} is not an IDB table we build")
            check[key] = models[check[key]]
    if "path" in check:  # parent_date_order: the chain of parent links, as relations
        hops = []
        for hop in check["path"]:
            if hop["table"] not in models:
                raise CatalogueError(f"rule {rid}: path table {hop['table']} is not an IDB table we build")
            hops.append({**hop, "table": models[hop["table"]]})
        check["path"] = hops
    if rid.startswith("LOCAL_"):
        missing = [k for k in ("consequence", "message", "why") if not raw.get(k)]
        if missing:
            raise CatalogueError(
                f"local rule {rid} must state {missing} (it has no NHS code to take them from)"
            )
        try:
            consequence = normalise_consequence(raw["consequence"])
        except ValueError as exc:
            raise CatalogueError(f"rule {rid}: {exc}") from None
        return Rule(rid, table, models[table], consequence, "Record", raw.get("dimension", "validity"),
                    check, raw["message"], column, raw["why"])  # fmt: skip
    if rid not in nhs:
        raise CatalogueError(f"rule {rid} is not an error code of NHS England's v6.0 rules file (use LOCAL_)")
    if any(k in raw for k in ("consequence", "message")):
        raise CatalogueError(
            f"rule {rid}: consequence and message come from the v6.0 rules file; remove them"
        )
    ref = nhs[rid]
    if ref.table != table:
        raise CatalogueError(f"rule {rid} is a {ref.table} rule in the v6.0 file, not {table}")
    if column and ref.element not in (column, table):
        raise CatalogueError(f"rule {rid} checks {ref.table}.{ref.element} in the v6.0 file, not {column}")
    return Rule(rid, table, models[table], ref.consequence, ref.level, raw.get("dimension", "validity"),
                check, ref.message, column, None, ref.value_items)  # fmt: skip


def _format_rules(doc: dict, dbt_project_dir: Path, path: Path) -> list[dict]:
    """``format_rules`` (IDB table -> column -> v6 Format error code) as catalogue entries, each
    with the format its dbt contract column declares."""
    contracts = {c.idb_table: c for c in load_contracts(dbt_project_dir).values()}
    out = []
    for table, columns in (doc.get("format_rules") or {}).items():
        if table not in contracts:
            raise CatalogueError(f"{path}: format_rules names {table}, which has no dbt contract")
        contract = contracts[table]
        types = dict(contract.columns)
        for column, rule_id in columns.items():
            if column not in types:
                raise CatalogueError(f"{path}: format rule {rule_id}: {table} has no column {column}")
            fmt = contract.value_format(column)
            out.append(
                {
                    "id": rule_id,
                    "table": table,
                    "column": column,
                    "dimension": "validity",
                    "check": {
                        "type": "format",
                        "format": fmt.text,
                        "data_type": types[column].split("(")[0].lower(),
                        "pattern": fmt.pattern,
                    },
                }
            )
    return out


# ------------------------------------------------------------------------------------ seeds
