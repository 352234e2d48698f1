"""The MHSDS validation rules catalogue and its SQL.

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

import csv
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.formats import ICD10_PATTERN, parse_format
from mhsds_pipeline.quality import sql_identifiers as sqlx
from mhsds_pipeline.quality.nhs_rules import NhsRule, load_nhs_rules, normalise_consequence
from mhsds_pipeline.quality.results import CheckResult

REPO = Path(__file__).resolve().parents[3]
CATALOGUE = REPO / "expectations" / "rules" / "mhsds_v6_rules.yml"
SEEDS = REPO / "dbt_project" / "seeds" / "reference"
DBT_PROJECT = REPO / "dbt_project"
#: A rejected header rejects the file: a submission without a valid header has none.
HEADER_TABLE = "MHS000Header"
#: The organisations in NHS England's ODS tables, as the trust configures them (a seed the trust
#: refreshes from the public ODS files; scripts/ods_seed.py builds the synthetic trust's).
ODS_SEED = "ref_ods_organisations"

#: The one severity vocabulary (STYLE.md): what happens to the data, in NHS England's words.
SEVERITIES = ("file rejected", "group rejected", "record rejected", "severity 1 warning", "warning", "info")
#: Severities that take rows out of the submission (into quarantine), cascading to dependants.
ROW_REJECTING = ("group rejected", "record rejected")


class CatalogueError(ValueError):
    """The rules catalogue is malformed (a rule names an unknown table, column, code or check)."""


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
        doc["cascade_order"] = [
            *doc["cascade_order"],
            *(t for t in part.get("cascade_order_tail") or () if t not in doc["cascade_order"]),
        ]


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


@cache
def seed_rows(seed: str, seeds_dir: Path = SEEDS) -> tuple[dict[str, str], ...]:
    """A reference seed's rows (code lists, refsets, tool ranges): the seeds dbt loads, found
    through the settings' dbt project (``SqlContext.seeds_dir``) so a trust's copy is the one read."""
    # the code lists of the tables built from the rules file live in v6/; a project without a
    # copy of a seed (a trust's trimmed project, a test's) reads the one this repository ships
    candidates = [Path(d) / sub / f"{seed}.csv" for d in (seeds_dir, SEEDS) for sub in ("", "v6")]
    path = next((p for p in candidates if p.exists()), candidates[0])
    with path.open(newline="") as fh:
        return tuple(csv.DictReader(fh))


def seed_codes(
    seed: str, column: str = "code", categories: tuple[str, ...] | None = None, seeds_dir: Path = SEEDS
) -> list[str]:
    rows = seed_rows(seed, seeds_dir)
    if categories is not None:
        rows = tuple(r for r in rows if r.get("vodim_category") in categories)
    return sorted({r[column] for r in rows})


def tool_ranges(seed: str = "ref_assessment_tools", seeds_dir: Path = SEEDS) -> dict[str, tuple[int, int]]:
    return {r["concept_id"]: (int(r["min_score"]), int(r["max_score"])) for r in seed_rows(seed, seeds_dir)}


# ------------------------------------------------------------------------------------ SQL


def q(identifier: str) -> str:
    """A quoted identifier (the marts keep the MHSDS mixed-case column names)."""
    return '"' + identifier.replace('"', '""') + '"'


def lit(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def in_list(values: list[str]) -> str:
    return "(" + ", ".join(lit(v) for v in values) + ")"


@dataclass(frozen=True)
class SqlContext:
    """What a rule's SQL needs besides the rule: where the marts are and the period."""

    schema: str
    rp_start: date
    rp_end: date
    org_id_provider: str
    dialect: str  # duckdb | postgresql
    failures_table: str = "dq.rule_failures"
    #: the extract's unreadable cells, resolved to MHSDS rows and rules (warehouse.load_raw)
    cell_errors_table: str = 'raw_epr."_cell_errors"'
    columns: dict[str, list[str]] = field(default_factory=dict)  # table -> column names
    seeds_dir: Path = SEEDS  # reference seeds (code lists): the settings' dbt project
    keys: dict[str, list[str]] = field(default_factory=dict)  # table -> key columns
    #: the organisation the Submission Portal login belongs to (the configured submitting org)
    org_id_submit: str | None = None

    header_model: str = "mhs000_header"

    def table(self, name: str) -> str:
        return f"{q(self.schema)}.{q(name)}"

    def key_expr(self, table: str, alias: str = "t") -> str:
        """The row key as one text value (``a|b|c``), the same in both dialects."""
        cols = self.keys.get(table) or []
        if not cols:
            return "'*'"
        parts = [f"COALESCE(CAST({alias}.{q(c)} AS VARCHAR), '')" for c in cols]
        return parts[0] if len(parts) == 1 else "(" + " || '|' || ".join(parts) + ")"

    def sa_dialect(self):
        # "named" paramstyle: literal SQL with single '%' (sa.text escapes it again for psycopg2).
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.dialect(paramstyle="named")
        from duckdb_engine import Dialect

        return Dialect(paramstyle="named")


def _compile(expr: sa.ColumnElement, ctx: SqlContext) -> str:
    return str(expr.compile(dialect=ctx.sa_dialect(), compile_kwargs={"literal_binds": True}))


def _text(column: str) -> str:
    return f"CAST(t.{q(column)} AS VARCHAR)"


def _regex_fails(expr: str, regex: str, ctx: SqlContext) -> str:
    if ctx.dialect == "postgresql":
        return f"NOT ({expr} ~ {lit(regex)})"
    return f"NOT regexp_matches({expr}, {lit(regex)})"


def _regex_finds(expr: str, regex: str, ctx: SqlContext) -> str:
    if ctx.dialect == "postgresql":
        return f"({expr} ~ {lit(regex)})"
    return f"regexp_matches({expr}, {lit(regex)})"


def _control_chars_regex(ctx: SqlContext) -> str:
    """formats.CONTROL_CHARS as each engine's regex escapes (PostgreSQL text cannot hold NUL)."""
    if ctx.dialect == "postgresql":
        return r"[\x01-\x1f\x7f-\x9f\u2028\u2029]"
    return r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"


def _format_fails(col: str, check: dict, ctx: SqlContext) -> str:
    """SQL twin of ``formats.ValueFormat.problem``: true when a non-NULL value breaks it."""
    x = f"t.{q(col)}"
    data_type = check.get("data_type", "varchar")
    fmt = parse_format(check.get("format"), data_type, check.get("pattern"))
    parts: list[str] = []
    if fmt.kind in ("date", "timestamp"):
        parts.append(f"EXTRACT(YEAR FROM {x}) NOT BETWEEN 1 AND 9999")
    if fmt.kind in ("time", "timestamp"):
        parts.append(f"CAST(EXTRACT(MICROSECONDS FROM {x}) AS BIGINT) % 1000000 <> 0")
    if fmt.kind in ("an", "n") and data_type in ("integer", "int", "bigint"):
        parts.append(f"{x} < 0 OR {x} > {10**fmt.max_length - 1}")
        if fmt.min_length and fmt.min_length > 1:
            parts.append(f"{x} < {10 ** (fmt.min_length - 1)}")
    elif fmt.kind in ("an", "n"):
        text = _text(col)
        parts.append(f"LENGTH({text}) < {fmt.min_length} OR LENGTH({text}) > {fmt.max_length}")
        parts.append(_regex_finds(text, _control_chars_regex(ctx), ctx))
        if fmt.kind == "n":
            parts.append(_regex_fails(text, "^[0-9]+$", ctx))
        if fmt.pattern == "ods":
            parts.append(_regex_fails(text, "^[A-Z0-9]+$", ctx))
    return f"{x} IS NOT NULL AND (" + " OR ".join(f"({p})" for p in parts) + ")"


def _source_cell_unreadable(rule: Rule, ctx: SqlContext) -> str:
    """True for a row whose EPR cell behind this rule could not be read at extract (it landed
    as NULL; see mhsds_pipeline.source_cells): the load resolved it to this rule and row key."""
    return (
        f"EXISTS (SELECT 1 FROM {ctx.cell_errors_table} e WHERE e.rule_id = {lit(rule.id)} "
        f"AND e.table_name = {lit(rule.model)} AND e.row_key = {ctx.key_expr(rule.model)})"
    )


def _stamp(date_col: str, time_col: str | None) -> str:
    if not time_col:
        return f"CAST(t.{q(date_col)} AS TIMESTAMP)"
    # date + time -> timestamp in both DuckDB and PostgreSQL
    return f"(CAST(t.{q(date_col)} AS DATE) + COALESCE(CAST(t.{q(time_col)} AS TIME), TIME '00:00:00'))"


def _quote_columns(sql: str, columns: list[str], alias: str = "t") -> str:
    """Quote bare column names in a catalogue's SQL condition (skipping literals)."""
    names = sorted(columns, key=len, reverse=True)
    if not names:
        return sql
    pattern = re.compile(r"'(?:[^']|'')*'|\b(" + "|".join(map(re.escape, names)) + r")\b")
    return pattern.sub(lambda m: f"{alias}.{q(m.group(1))}" if m.group(1) else m.group(0), sql)


def fail_predicate(rule: Rule, ctx: SqlContext) -> str:
    """SQL condition true for each row of ``rule.model`` (alias ``t``) that fails the rule."""
    c = rule.check
    col = rule.column
    kind = rule.type
    if kind == "not_null":
        if rule.table == HEADER_TABLE:  # built by dbt, not read from the EPR
            return f"t.{q(col)} IS NULL"
        # A cell the extract could not read also lands as NULL, but it was not blank at source:
        # its own rule (the column's format rule or LOCAL_*_SOURCE_CELL) rejects the row instead.
        unreadable = (
            f"SELECT 1 FROM {ctx.cell_errors_table} e WHERE e.table_name = {lit(rule.model)} "
            f"AND (e.column_name = {lit(col)} OR e.column_name IS NULL) AND e.row_key = {ctx.key_expr(rule.model)}"
        )
        return f"t.{q(col)} IS NULL AND NOT EXISTS ({unreadable})"
    if kind in ("code_list", "code_list_default"):
        if kind == "code_list":
            codes = seed_codes(c["seed"], c.get("seed_column", "code"), seeds_dir=ctx.seeds_dir)
            return f"t.{q(col)} IS NOT NULL AND {_text(col)} NOT IN {in_list(codes)}"
        codes = seed_codes(c["seed"], c.get("seed_column", "code"), ("default",), ctx.seeds_dir)
        return f"{_text(col)} IN {in_list(codes)}"
    if kind == "pattern":
        return f"t.{q(col)} IS NOT NULL AND {_regex_fails(_text(col), c['regex'], ctx)}"
    if kind == "nhs_number":
        valid = _compile(sqlx.nhs_number_valid_expr(sa.literal_column(f"t.{q(col)}")), ctx)
        return f"t.{q(col)} IS NOT NULL AND NOT ({valid})"
    if kind == "sctid":
        valid = _compile(
            sqlx.sctid_valid_expr(sa.literal_column(f"t.{q(col)}"), tuple(c.get("partitions", ("00", "10")))),
            ctx,
        )
        return f"t.{q(col)} IS NOT NULL AND NOT ({valid})"
    if kind == "value_set":
        codes = seed_codes(c["seed"], c.get("seed_column", "code"), seeds_dir=ctx.seeds_dir)
        cond = f"t.{q(col)} IS NOT NULL AND {_text(col)} NOT IN {in_list(codes)}"
        if c.get("require_valid_sctid", True):
            valid = _compile(sqlx.sctid_valid_expr(sa.literal_column(f"t.{q(col)}"), ("00", "10")), ctx)
            cond += f" AND ({valid})"
        return cond
    if kind == "score_range":
        tool = q(c["tool_column"])
        ranges = tool_ranges(c["seed"], ctx.seeds_dir)
        valid = _compile(
            sqlx.score_in_tool_range_expr(
                sa.literal_column(f"t.{tool}"), sa.literal_column(f"t.{q(col)}"), ranges
            ),
            ctx,
        )
        # Only tools in the list are range-checked; an unknown tool is the tool rule's failure.
        return f"t.{q(col)} IS NOT NULL AND CAST(t.{tool} AS VARCHAR) IN {in_list(sorted(ranges))} AND NOT ({valid})"
    if kind == "date_in_period":
        value = f"CAST(t.{q(col)} AS DATE)"
        bound = c.get("bound", "both")
        parts = []
        if bound in ("start", "both"):
            parts.append(f"{value} < {lit(ctx.rp_start)}")
        if bound in ("end", "both"):  # grace_days: "after the ReportingPeriodEndDate plus 24 hours"
            parts.append(f"{value} > {lit(ctx.rp_end + timedelta(days=int(c.get('grace_days', 0))))}")
        return f"t.{q(col)} IS NOT NULL AND ({' OR '.join(parts)})"
    if kind == "date_order":
        before = _stamp(c["before"], c.get("before_time"))
        after = _stamp(c["after"], c.get("after_time"))
        return f"t.{q(c['before'])} IS NOT NULL AND t.{q(c['after'])} IS NOT NULL AND {after} < {before}"
    if kind == "unique":
        cols = c["columns"]
        nonnull = " AND ".join(f"t.{q(x)} IS NOT NULL" for x in cols)
        match = " AND ".join(f"d.{q(x)} = t.{q(x)}" for x in cols)
        # ``where``: only rows meeting the condition count (MHS00222: open registrations only)
        names = ctx.columns.get(rule.model, [])
        inner = f" WHERE {_quote_columns(c['where'], names, 'u')}" if c.get("where") else ""
        outer = f" AND ({_quote_columns(c['where'], names)})" if c.get("where") else ""
        dup = (
            f"SELECT {', '.join(q(x) for x in cols)} FROM {ctx.table(rule.model)} u{inner} "
            f"GROUP BY {', '.join(q(x) for x in cols)} HAVING COUNT(*) > 1"
        )
        return f"{nonnull}{outer} AND EXISTS (SELECT 1 FROM ({dup}) d WHERE {match})"
    if kind == "references":
        parent = c["parent"]
        match = " AND ".join(f"p.{q(pc)} = t.{q(cc)}" for cc, pc in c["columns"].items())
        nonnull = " AND ".join(f"t.{q(cc)} IS NOT NULL" for cc in c["columns"])
        rejected = (
            f"SELECT 1 FROM {ctx.failures_table} f WHERE f.table_name = {lit(parent)} "
            f"AND f.severity IN {in_list(list(ROW_REJECTING))} AND f.row_key = {ctx.key_expr(parent, 'p')}"
        )
        valid_parent = f"SELECT 1 FROM {ctx.table(parent)} p WHERE {match} AND NOT EXISTS ({rejected})"
        return f"{nonnull} AND NOT EXISTS ({valid_parent})"
    if kind == "has_child":
        child = c["child"]
        match = " AND ".join(f"ch.{q(cc)} = t.{q(pc)}" for pc, cc in c["columns"].items())
        return f"NOT EXISTS (SELECT 1 FROM {ctx.table(child)} ch WHERE {match})"
    if kind == "format":
        if rule.table == HEADER_TABLE:  # built by dbt, not read from the EPR
            return _format_fails(col, c, ctx)
        return f"(({_format_fails(col, c, ctx)}) OR {_source_cell_unreadable(rule, ctx)})"
    if kind == "source_cell":
        return _source_cell_unreadable(rule, ctx)
    if kind == "diagnosis_code":
        scheme = f"CAST(t.{q(c['scheme_column'])} AS VARCHAR)"
        sctid = _compile(sqlx.sctid_valid_expr(sa.literal_column(f"t.{q(col)}"), ("00", "10")), ctx)
        icd10, snomed = lit(str(c.get("icd10_code", "02"))), lit(str(c.get("snomed_code", "06")))
        return (
            f"t.{q(col)} IS NOT NULL AND (({scheme} = {icd10} AND {_regex_fails(_text(col), ICD10_PATTERN.pattern, ctx)}) "
            f"OR ({scheme} = {snomed} AND NOT ({sctid})))"
        )
    if kind == "always":  # MHS60815: no assessment tools are in scope, every record is rejected
        return "TRUE"
    if kind == "org_live":
        # "not for a current live organisation in national tables": the ODS reference seed the
        # trust refreshes from NHS England's ODS files (docs/rules.md "Organisations").
        rows = seed_rows(c.get("seed", ODS_SEED), ctx.seeds_dir)
        if c.get("during_period"):
            live = [
                r["code"] for r in rows
                if (not r.get("open_date") or r["open_date"] <= ctx.rp_end.isoformat())
                and (not r.get("close_date") or r["close_date"] >= ctx.rp_start.isoformat())
            ]  # fmt: skip
        else:
            live = [
                r["code"] for r in rows
                if (not r.get("open_date") or r["open_date"] <= ctx.rp_end.isoformat())
                and (not r.get("close_date") or r["close_date"] > ctx.rp_end.isoformat())
            ]  # fmt: skip
        return f"t.{q(col)} IS NOT NULL AND UPPER({_text(col)}) NOT IN {in_list(sorted(live))}"
    if kind == "parent_date_order":
        # this row's date against a parent's (or grandparent's) date, through its parent links
        joins, prev = [], "t"
        for n, hop in enumerate(c["path"]):
            alias = f"p{n}"
            match = " AND ".join(f"{alias}.{q(pc)} = {prev}.{q(pc)}" for pc in hop["columns"])
            joins.append((alias, hop["table"], match))
            prev = alias
        last = joins[-1][0]
        this, other = f"CAST(t.{q(col)} AS DATE)", f"CAST({last}.{q(c['other'])} AS DATE)"
        cmp = f"{this} < {other}" if c["relation"] == "before" else f"{this} > {other}"
        frm = f"{ctx.table(joins[0][1])} {joins[0][0]}"
        on = [joins[0][2]]
        for alias, table, match in joins[1:]:
            frm += f" JOIN {ctx.table(table)} {alias} ON {match}"
        return (
            f"t.{q(col)} IS NOT NULL AND EXISTS (SELECT 1 FROM {frm} WHERE {' AND '.join(on)} "
            f"AND {last}.{q(c['other'])} IS NOT NULL AND {cmp})"
        )
    if kind == "after_dataset_created":
        created = f'(SELECT MAX(CAST(h."DateTimeDatSetCreate" AS DATE)) FROM {ctx.table(ctx.header_model)} h)'
        return f"t.{q(col)} IS NOT NULL AND CAST(t.{q(col)} AS DATE) > {created}"
    if kind == "after_upload":  # the upload is now or later: a creation time in the future fails
        return (
            f"t.{q(col)} IS NOT NULL AND CAST(t.{q(col)} AS TIMESTAMP) > CAST(CURRENT_TIMESTAMP AS TIMESTAMP)"
        )
    if kind == "age_range":
        lo, hi = int(c.get("min_years", 0)), int(c.get("max_years", 130))
        born = f"CAST(t.{q(col)} AS DATE)"
        oldest = ctx.rp_end.replace(year=ctx.rp_end.year - hi - 1) + timedelta(days=1)
        youngest = ctx.rp_end.replace(year=ctx.rp_end.year - lo) if lo else ctx.rp_end
        return f"t.{q(col)} IS NOT NULL AND ({born} < {lit(oldest)} OR {born} > {lit(youngest)})"
    if kind == "fail_when":
        sql = c["sql"].format(
            rp_start=lit(ctx.rp_start),
            rp_end=lit(ctx.rp_end),
            org_id_provider=lit(ctx.org_id_provider),
            org_id_submit=lit(ctx.org_id_submit or ctx.org_id_provider),
        )
        return "(" + _quote_columns(sql, ctx.columns.get(rule.model, [])) + ")"
    raise CatalogueError(f"rule {rule.id}: unknown check type {kind!r}")


def parent_cause(rule: Rule, ctx: SqlContext) -> str:
    """For a ``references`` failure: 'rejected_parent' when the parent exists, else 'missing_parent'."""
    if rule.type != "references":
        return "NULL"
    parent = rule.check["parent"]
    match = " AND ".join(f"p.{q(pc)} = t.{q(cc)}" for cc, pc in rule.check["columns"].items())
    return (
        f"CASE WHEN EXISTS (SELECT 1 FROM {ctx.table(parent)} p WHERE {match}) "
        "THEN 'rejected_parent' ELSE 'missing_parent' END"
    )


def failing_rows_sql(rule: Rule, ctx: SqlContext, select: str = "1") -> str:
    """``SELECT <select> FROM <table> t WHERE <rule fails>``."""
    return f"SELECT {select} FROM {ctx.table(rule.model)} t WHERE {fail_predicate(rule, ctx)}"
