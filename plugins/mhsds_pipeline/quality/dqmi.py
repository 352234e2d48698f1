"""Data Quality Maturity Index (DQMI) for one MHSDS reporting period, counted in the warehouse.

NHS England scores every provider's MHSDS submission each month; this module computes the same
kind of score locally before submission, so a weak data item is found while it can still be
fixed. Method (digest: /work/shared/reference/dqmi_snomed.md, Part A):

* **VODIM** (A2.2, A2.3): every record of an item is Valid, Other (valid but non-specific, e.g.
  ethnic category Z), Default (a "not known" code, e.g. X, 99, ZZ99 postcodes), Invalid (present
  but not an accepted value) or Missing (null or blank). One SQL query per table counts the five
  categories of all that table's items; nothing but counts leaves the warehouse.
* **Item score** (A1.3): ``(valid and complete - defaults in excess) / records x 100`` where
  valid and complete = V + O + D and defaults in excess = ``max(0, D - threshold x records)``.
* **Coverage** (A1.4): ``submitted / expected``. By default 1 when the warehouse holds the
  period's MHS000Header (the provider submitted) and 0 when it holds none. National expected
  volumes per table are not published per provider; pass ``expected_records`` to score coverage
  as ``min(1, records / expected)`` per table instead.
* **Data set score** (A1.5): ``mean(item score) x mean(coverage)`` over the items with data.
* **SNOMED CT coverage** (A2.5, NHS England CDP_Q04): % of distinct attended care contacts
  (AttendStatus 5, 6) with at least one MHS202 care activity carrying a valid SNOMED CT
  identifier (Procedure or Observation focus concept, or a Finding coded in the SNOMED CT
  finding scheme).

The item rules, default thresholds, targets and validity windows are the versioned seed
``dbt_project/seeds/reference/ref_dqmi_items.csv``; code lists are the reference seeds beside
it. Both are read as CSV files, so dbt need not have loaded them. The scoring arithmetic is
pure Python (:func:`item_score`, :func:`dataset_score` ...) and unit-tested on the methodology's
worked examples; the SQL only counts.

Privacy: results hold counts, rates and code-list metadata only; never a patient identifier or a
record key.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.privacy import SUPPRESSION_MARK, disclosure_control
from mhsds_pipeline.quality.results import CheckResult
from mhsds_pipeline.quality.sql_identifiers import nhs_number_valid_expr, sctid_valid_expr

log = logging.getLogger(__name__)

__all__ = [
    "DQMI_PARQUET_SCHEMA",
    "DqmiConfig",
    "DqmiItem",
    "DqmiResult",
    "ItemResult",
    "SnomedCoverage",
    "VodimCounts",
    "compute_dqmi",
    "coverage_ratio",
    "dataset_score",
    "defaults_allowed",
    "defaults_in_excess",
    "item_score",
    "item_score_from_vodim",
    "load_dqmi_config",
    "render_dqmi_html",
    "snomed_ct_coverage_pct",
    "to_check_results",
    "write_dqmi",
]

SEED_FILE: Final[str] = "ref_dqmi_items.csv"
HEADER_TABLE: Final[str] = "mhs000_header"
REFERRAL_TABLE: Final[str] = "mhs101_referral"
MPI_TABLE: Final[str] = "mhs001_mpi"
FINDING_SCHEME_SEED: Final[str] = "ref_finding_scheme"

#: Where the method comes from, printed in the report and the Parquet metadata.
METHOD_SOURCE: Final[str] = (
    "NHS Digital DQMI methodology and Appendix 1 [S4]; NHS Digital MHSDS VODIM rules "
    "(menh_dq 1.3.populate_tables.sql, validity_v5.sql, DQMI_extracts.py) [S10][S11][S16][S17]; "
    "NHS England MHSDS DQ dashboard / Core Data Pack targets [S12][S13] - digested in "
    "/work/shared/reference/dqmi_snomed.md Part A"
)

#: DQMI rows in dq_results: under target is worth acting on, never a reason to withhold publication.
DQMI_SEVERITY: Final[str] = "warning"

RULES_ITEM: Final[frozenset[str]] = frozenset(
    {
        "code_list",
        "code_list_first_char",
        "code_shape",
        "ods_code",
        "nhs_number",
        "birth_date",
        "date_not_before",
        "date_in_referral",
    }
)
RULE_SNOMED: Final[str] = "snomed_ct_coverage"
RULE_DATASET: Final[str] = "dataset_score"

#: Named denominators (seed column ``population``). Filters live here, not as SQL text in a CSV.
POPULATIONS: Final[dict[str, str]] = {
    "all": "every record of the table",
    "referrals_received_from_2016": "referrals received on or after 1 January 2016",
    "cyp_eating_disorder_referrals": "referrals with primary reason 12 (eating disorders) for patients under 19 at RP end",
    "discharged_referrals": "referrals with a service discharge date (closed)",
    "closed_other_services": "other-service referrals with a referral closure date",
    "not_scottish_gp_practice": "GP registrations except Scottish practices (codes starting S)",
}
_EATING_DISORDER_REASON: Final[str] = "12"  # ref_primary_reason_referral: 12 Eating disorders
_CYP_AGE_LIMIT: Final[int] = 19  # dqmi_snomed.md A2.3: clinical response priority for under-19s
_MHSDS_START: Final[date] = date(2016, 1, 1)

#: VODIM categories, in report order, with what each means for a reader in information governance.
CATEGORIES: Final[tuple[str, ...]] = ("valid", "other", "default", "invalid", "missing")
CATEGORY_MEANING: Final[dict[str, str]] = {
    "valid": "A specific, accepted value (a national code, a well-formed identifier, a plausible date).",
    "other": "An accepted code that carries little information, e.g. ethnic category Z 'not stated', "
    "consultation mechanism 98. Always counts towards the score.",
    "default": "A 'not known' placeholder, e.g. gender X, ethnic category 99, postcode ZZ99. Counts towards "
    "the score only up to the item's default threshold (percent of records).",
    "invalid": "A value is present but is not accepted: not in the code list, wrong format, failed check "
    "digit, impossible date. Never counts.",
    "missing": "Null or blank. Never counts.",
}
_CAT_CODE: Final[dict[str, int]] = {c: i + 1 for i, c in enumerate(CATEGORIES)}

_IDENT_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PERIOD_RE: Final[re.Pattern[str]] = re.compile(r"^\d{4}-\d{2}$")
_UPPER: Final[str] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS: Final[str] = "0123456789"


# ============================================================================================
# Scoring arithmetic (pure Python; the published worked examples are the unit tests)
# ============================================================================================


def defaults_allowed(threshold_pct: float | None, records: int) -> float:
    """How many default values may count as valid: threshold % of the records (0 if no threshold)."""
    if threshold_pct is None:
        return 0.0
    # percent x records / 100 rather than (percent / 100) x records: 2 x 2500 / 100 is exactly 50.
    return threshold_pct * records / 100


def defaults_in_excess(defaults: int, threshold_pct: float | None, records: int) -> float:
    """``Total defaults - threshold x records``, floored at 0 (DQMI Appendix 1, dqmi_snomed.md A1.3).

    ``threshold_pct`` None is the methodology's '-' (defaults not applicable): every default is
    in excess, which only matters if an item without defaults somehow has some.
    """
    return max(0.0, defaults - defaults_allowed(threshold_pct, records))


def item_score(
    valid_and_complete: int, defaults: int, threshold_pct: float | None, records: int
) -> float | None:
    """Data item score 0-100: ``(valid and complete - defaults in excess) / records x 100``.

    ``valid_and_complete`` includes the defaults (they are complete, valid codes); only the
    defaults above the item's threshold are taken back off. None when there are no records:
    an item with no data is not scored (it is left out of the data set mean, A1.5).
    """
    if records <= 0:
        return None
    if not 0 <= defaults <= valid_and_complete <= records:
        raise ValueError(
            f"item counts are inconsistent: need 0 <= defaults ({defaults}) <= valid and complete "
            f"({valid_and_complete}) <= records ({records})"
        )
    return (valid_and_complete - defaults_in_excess(defaults, threshold_pct, records)) / records * 100


def item_score_from_vodim(counts: VodimCounts, threshold_pct: float | None) -> float | None:
    """Item score from VODIM counts: valid and complete = V + O + D (DQMI_extracts ValidNumerator, A2.2)."""
    return item_score(counts.valid_and_complete, counts.default, threshold_pct, counts.total)


def dataset_score(item_scores: Sequence[float], coverages: Sequence[float]) -> float | None:
    """Data set score 0-100: ``mean(item scores) x mean(coverage)`` (DQMI methodology, A1.5).

    ``item_scores`` are 0-100 and ``coverages`` 0-1, one each per item with data (equal weights:
    no item weighting was found in the method). None when no item has data.
    """
    if len(item_scores) != len(coverages):
        raise ValueError(
            f"{len(item_scores)} item scores but {len(coverages)} coverages: give one of each per item"
        )
    if not item_scores:
        return None
    return (sum(item_scores) / len(item_scores)) * (sum(coverages) / len(coverages))


def coverage_ratio(submitted: float, expected: float) -> float:
    """Coverage ``C = submitted / expected`` capped at 1; 1 when nothing was expected (A1.4).

    A provider not expected to submit (e.g. closed) is not penalised; one that was expected and
    submitted nothing scores 0.
    """
    if expected <= 0:
        return 1.0
    return max(0.0, min(1.0, submitted / expected))


def snomed_ct_coverage_pct(contacts_with_snomed: int, attended_contacts: int) -> float | None:
    """% attended care contacts with at least one SNOMED CT coded care activity (CDP_Q04, A2.5)."""
    if attended_contacts <= 0:
        return None
    return contacts_with_snomed / attended_contacts * 100


# ============================================================================================
# Configuration: the versioned seed
# ============================================================================================


@dataclass(frozen=True)
class DqmiItem:
    """One row of ``ref_dqmi_items.csv``: how to classify one column into VODIM and score it."""

    item_id: str
    data_item: str
    data_item_uid: str
    table_name: str
    column_name: str
    rule: str
    code_list: str | None = None
    valid_values: tuple[str, ...] = ()
    other_values: tuple[str, ...] = ()
    default_values: tuple[str, ...] = ()
    population: str = "all"
    rule_arg: str | None = None
    default_threshold_pct: float | None = None
    target_score: float = 70.0
    first_period: str | None = None
    last_period: str | None = None
    version: str = ""
    source: str = ""

    def applies_to(self, period: ReportingPeriod) -> bool:
        p = str(period)
        return (self.first_period is None or self.first_period <= p) and (
            self.last_period is None or p <= self.last_period
        )


@dataclass(frozen=True)
class DqmiConfig:
    """The seed rows active for one period, split by kind."""

    items: tuple[DqmiItem, ...]
    snomed: DqmiItem | None
    dataset_target: float
    version: str


def _default_seed_dir() -> Path:
    from mhsds_pipeline.config import load_settings

    return load_settings().dbt_project_dir / "seeds" / "reference"


def _split(cell: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (cell or "").split("|") if v.strip())


def _opt(cell: str | None) -> str | None:
    cell = (cell or "").strip()
    return cell or None


def _opt_float(cell: str | None, where: str) -> float | None:
    text = _opt(cell)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise FileNotFoundError(
            f"DQMI reference seed {path} is missing; it ships in dbt_project/seeds/reference/."
        )
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _code_list(seed_dir: Path, name: str) -> dict[str, str]:
    """``{code: vodim_category}`` of a reference code-list seed."""
    rows = _read_csv(seed_dir / f"{name}.csv")
    if rows and ("code" not in rows[0] or "vodim_category" not in rows[0]):
        raise ValueError(
            f"{name}.csv has no code / vodim_category columns: it cannot serve as a DQMI code list"
        )
    return {r["code"].strip(): r["vodim_category"].strip() for r in rows}


def _item_from_row(row: dict[str, str], line: int) -> DqmiItem:
    where = f"{SEED_FILE} line {line} ({row.get('item_id')!r})"
    rule = (row.get("rule") or "").strip()
    if rule not in RULES_ITEM | {RULE_SNOMED, RULE_DATASET}:
        raise ValueError(
            f"{where}: unknown rule {rule!r}; use one of {sorted(RULES_ITEM | {RULE_SNOMED, RULE_DATASET})}"
        )
    population = _opt(row.get("population")) or "all"
    if population not in POPULATIONS:
        raise ValueError(f"{where}: unknown population {population!r}; use one of {sorted(POPULATIONS)}")
    for key in ("first_period", "last_period"):
        value = _opt(row.get(key))
        if value is not None and not _PERIOD_RE.match(value):
            raise ValueError(f"{where}: {key} {value!r} is not YYYY-MM")
    item = DqmiItem(
        item_id=row["item_id"].strip(),
        data_item=(row.get("data_item") or "").strip(),
        data_item_uid=(row.get("data_item_uid") or "").strip(),
        table_name=(row.get("table_name") or "").strip(),
        column_name=(row.get("column_name") or "").strip(),
        rule=rule,
        code_list=_opt(row.get("code_list")),
        valid_values=_split(row.get("valid_values")),
        other_values=_split(row.get("other_values")),
        default_values=_split(row.get("default_values")),
        population=population,
        rule_arg=_opt(row.get("rule_arg")),
        default_threshold_pct=_opt_float(row.get("default_threshold_pct"), where),
        target_score=_opt_float(row.get("target_score"), where) or 0.0,
        first_period=_opt(row.get("first_period")),
        last_period=_opt(row.get("last_period")),
        version=(row.get("version") or "").strip(),
        source=(row.get("source") or "").strip(),
    )
    if rule != RULE_DATASET:
        for ident in (item.table_name, item.column_name):
            if not _IDENT_RE.match(ident):
                raise ValueError(f"{where}: {ident!r} is not a plain table/column name")
    if rule in ("code_list", "code_list_first_char") and not (item.code_list or item.valid_values):
        raise ValueError(f"{where}: rule {rule} needs a code_list seed or valid_values")
    if rule == "code_shape" and not item.valid_values:
        raise ValueError(f"{where}: rule code_shape needs valid_values shapes (A = letter, 9 = digit)")
    if rule == "date_not_before" and not (item.rule_arg and _IDENT_RE.match(item.rule_arg)):
        raise ValueError(f"{where}: rule date_not_before needs rule_arg = the column it must not precede")
    if rule == "birth_date" and item.rule_arg is not None and not item.rule_arg.isdigit():
        raise ValueError(
            f"{where}: rule birth_date takes rule_arg = maximum age in years, got {item.rule_arg!r}"
        )
    if rule == RULE_SNOMED and not (item.rule_arg and _IDENT_RE.match(item.rule_arg) and item.valid_values):
        raise ValueError(
            f"{where}: snomed_ct_coverage needs rule_arg = care activity table and valid_values = attended codes"
        )
    if item.default_threshold_pct is not None and not 0 <= item.default_threshold_pct <= 100:
        raise ValueError(f"{where}: default_threshold_pct must be 0-100 (percent of records)")
    return item


def _resolve_code_list(item: DqmiItem, seed_dir: Path) -> DqmiItem:
    """Valid codes from the item's code-list seed; its other/default codes must agree with the seed's.

    The item seed states the other/default codes (so a reviewer sees the whole rule in one row)
    and the code list carries them too; a disagreement is a versioning mistake, so it stops the
    run instead of silently picking one.
    """
    if not item.code_list:
        return item
    if not _IDENT_RE.match(item.code_list):
        raise ValueError(f"{SEED_FILE} {item.item_id!r}: code_list {item.code_list!r} is not a seed name")
    codes = _code_list(seed_dir, item.code_list)
    by_cat = {
        cat: tuple(sorted(c for c, v in codes.items() if v == cat)) for cat in ("valid", "other", "default")
    }
    for cat, stated in (("other", item.other_values), ("default", item.default_values)):
        if set(stated) != set(by_cat[cat]):
            raise ValueError(
                f"{SEED_FILE} {item.item_id!r}: {cat}_values {sorted(stated)} disagree with "
                f"{item.code_list}.csv vodim_category = {cat} codes {list(by_cat[cat])}; make them match."
            )
    return replace(item, valid_values=tuple(sorted(set(item.valid_values) | set(by_cat["valid"]))))


def load_dqmi_config(period: ReportingPeriod | str | None = None, seed_dir: Path | None = None) -> DqmiConfig:
    """The DQMI rows of ``ref_dqmi_items.csv`` that apply to ``period`` (all rows if None).

    Code-list items get their valid codes from the referenced seed. Raises ValueError with the
    line and item at fault for anything malformed, because a wrong rule silently mis-scores.
    """
    seed_dir = Path(seed_dir) if seed_dir else _default_seed_dir()
    rp = ReportingPeriod.parse(period) if isinstance(period, str) else period
    rows = _read_csv(seed_dir / SEED_FILE)
    items: list[DqmiItem] = []
    snomed: DqmiItem | None = None
    dataset_target: float | None = None
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        item = _item_from_row(row, line)
        if rp is not None and not item.applies_to(rp):
            continue
        if item.item_id in seen:
            raise ValueError(f"{SEED_FILE}: item {item.item_id!r} has more than one row active for {rp}")
        seen.add(item.item_id)
        if item.rule == RULE_DATASET:
            dataset_target = item.target_score
        elif item.rule == RULE_SNOMED:
            snomed = item
        else:
            items.append(_resolve_code_list(item, seed_dir))
    versions = sorted({i.version for i in items} | ({snomed.version} if snomed else set()))
    return DqmiConfig(
        items=tuple(items),
        snomed=snomed,
        dataset_target=70.0 if dataset_target is None else dataset_target,
        version="+".join(v for v in versions if v) or "unversioned",
    )


# ============================================================================================
# Results
# ============================================================================================


@dataclass(frozen=True)
class VodimCounts:
    valid: int = 0
    other: int = 0
    default: int = 0
    invalid: int = 0
    missing: int = 0

    @property
    def total(self) -> int:
        return self.valid + self.other + self.default + self.invalid + self.missing

    @property
    def valid_and_complete(self) -> int:
        """V + O + D: the DQMI 'valid and complete' records before the default threshold."""
        return self.valid + self.other + self.default

    def as_dict(self) -> dict[str, int]:
        return {c: getattr(self, c) for c in CATEGORIES}


@dataclass(frozen=True)
class ItemResult:
    item: DqmiItem
    counts: VodimCounts | None
    coverage: float
    score: float | None
    status: str  # passed | failed | not_applicable | error
    error: str | None = None

    @property
    def included(self) -> bool:
        """In the data set score: the item had data (A1.5: items for which data was submitted)."""
        return self.score is not None

    @property
    def defaults_allowed(self) -> float | None:
        if self.counts is None:
            return None
        return defaults_allowed(self.item.default_threshold_pct, self.counts.total)

    @property
    def defaults_in_excess(self) -> float | None:
        if self.counts is None:
            return None
        return defaults_in_excess(self.counts.default, self.item.default_threshold_pct, self.counts.total)

    @property
    def met_threshold(self) -> bool | None:
        return None if self.score is None else self.score >= self.item.target_score

    @property
    def scored_records(self) -> int | None:
        """Records counted as valid by the score: V + O + the defaults allowed, in whole records."""
        if self.counts is None:
            return None
        allowed = min(self.counts.default, math.floor(self.defaults_allowed or 0.0))
        return self.counts.valid + self.counts.other + allowed


@dataclass(frozen=True)
class SnomedCoverage:
    attended_contacts: int
    contacts_with_snomed: int
    target: float
    attended_codes: tuple[str, ...]
    source: str = ""
    error: str | None = None

    @property
    def coverage_pct(self) -> float | None:
        return snomed_ct_coverage_pct(self.contacts_with_snomed, self.attended_contacts)

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if self.coverage_pct is None:
            return "not_applicable"
        return "passed" if self.coverage_pct >= self.target else "failed"


@dataclass(frozen=True)
class DqmiResult:
    period: str
    schema: str
    provider: str | None
    submitted: bool
    method_version: str
    items: tuple[ItemResult, ...]
    dataset_target: float
    snomed: SnomedCoverage | None
    coverage_basis: str
    table_records: Mapping[str, int] = field(default_factory=dict)

    @property
    def scored_items(self) -> tuple[ItemResult, ...]:
        return tuple(r for r in self.items if r.included)

    @property
    def mean_item_score(self) -> float | None:
        scored = self.scored_items
        return sum(r.score for r in scored) / len(scored) if scored else None  # type: ignore[misc]

    @property
    def mean_coverage(self) -> float | None:
        scored = self.scored_items
        return sum(r.coverage for r in scored) / len(scored) if scored else None

    @property
    def dataset_score(self) -> float | None:
        scored = self.scored_items
        return dataset_score([r.score for r in scored], [r.coverage for r in scored])  # type: ignore[misc]

    @property
    def dataset_status(self) -> str:
        score = self.dataset_score
        if score is None:
            return "not_applicable"
        return "passed" if score >= self.dataset_target else "failed"


# ============================================================================================
# SQL: VODIM classification pushed down to the warehouse
# ============================================================================================


def _lit(value: str) -> ColumnElement[str]:
    """A bound string parameter (codes come from the seed; never spliced into SQL text)."""
    return sa.literal(value, sa.String)


def _text(column: ColumnElement) -> ColumnElement[str]:
    return column if isinstance(column.type, sa.String) else sa.cast(column, sa.String)


def _trimmed(column: ColumnElement) -> ColumnElement[str]:
    return sa.func.trim(_text(column))


def _as_date(column: ColumnElement) -> ColumnElement[date]:
    return (
        column
        if isinstance(column.type, sa.Date) and not isinstance(column.type, sa.DateTime)
        else sa.cast(column, sa.Date)
    )


def _shape(text: ColumnElement[str]) -> ColumnElement[str]:
    """Letters -> 'A', digits -> '9' (e.g. 'WR2 4GD' -> 'AA9 9AA'): a portable character-class match."""
    return sa.func.translate(sa.func.upper(text), _lit(_UPPER + _DIGITS), _lit("A" * 26 + "9" * 10))


def _in(expr: ColumnElement[str], values: Iterable[str]) -> ColumnElement[bool] | None:
    values = list(values)
    return expr.in_([_lit(v) for v in values]) if values else None


def _matches_defaults(text: ColumnElement[str], defaults: Sequence[str]) -> ColumnElement[bool] | None:
    """Exact default codes, and prefixes written with a trailing '%' (e.g. ZZ99%), case-insensitive."""
    exact = [d for d in defaults if not d.endswith("%")]
    prefixes = [d for d in defaults if d.endswith("%")]
    clauses: list[ColumnElement[bool]] = []
    if exact:
        clauses.append(text.in_([_lit(d) for d in exact]))
    for p in prefixes:
        clauses.append(sa.func.upper(text).like(_lit(p.upper())))
    return sa.or_(*clauses) if clauses else None


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 February in a non-leap year
        return d.replace(year=d.year - years, day=28)


@dataclass
class _Ctx:
    """What the SQL builders need: the period and the warehouse tables as SQLAlchemy objects."""

    period: ReportingPeriod
    tables: dict[str, sa.TableClause]


def _column(ctx: _Ctx, table: str, column: str) -> ColumnElement:
    tbl = ctx.tables.get(table)
    if tbl is None:
        raise LookupError(
            f"table {table!r} is not in the warehouse schema; did dbt build run for {ctx.period}?"
        )
    if column not in tbl.c:
        raise LookupError(f"column {table}.{column} is not in the warehouse; check the mart contract")
    return tbl.c[column]


def _case(
    missing: ColumnElement[bool], *branches: tuple[ColumnElement[bool] | None, str], else_: str = "invalid"
) -> ColumnElement[int]:
    whens = [(missing, _CAT_CODE["missing"])]
    whens += [(cond, _CAT_CODE[cat]) for cond, cat in branches if cond is not None]
    return sa.case(*whens, else_=_CAT_CODE[else_])


def _category_expr(item: DqmiItem, ctx: _Ctx) -> ColumnElement[int]:
    """SQL returning the VODIM category code (1-5) of the item's value in each row.

    Tests run in the order missing, default, other, valid, so a code listed as a default is
    never counted valid by an overlapping shape (ZZ99 3VZ is postcode-shaped). Every branch is
    a positive test: a NULL sub-result falls through to 'invalid', never to NULL.
    """
    col = _column(ctx, item.table_name, item.column_name)
    rule = item.rule
    if rule in ("code_list", "code_list_first_char", "code_shape", "ods_code", "nhs_number"):
        t = _trimmed(col)
        missing = sa.or_(col.is_(None), t == _lit(""))
        default = _matches_defaults(t, item.default_values)
        if rule == "code_list":
            return _case(
                missing,
                (default, "default"),
                (_in(t, item.other_values), "other"),
                (_in(t, item.valid_values), "valid"),
            )
        if rule == "code_list_first_char":
            first = sa.func.substr(t, 1, 1)
            return _case(
                missing,
                (default, "default"),
                (_in(first, item.other_values), "other"),
                (_in(first, item.valid_values), "valid"),
            )
        if rule == "code_shape":
            return _case(missing, (default, "default"), (_in(_shape(t), item.valid_values), "valid"))
        if rule == "ods_code":
            # ODS organisation codes: 3 or 5 upper-case letters/digits (format only, see seed source).
            well_formed = sa.and_(
                sa.func.length(t).in_([3, 5]),
                sa.func.translate(t, _lit(_UPPER + _DIGITS), _lit("")) == _lit(""),
            )
            return _case(missing, (default, "default"), (well_formed, "valid"))
        return _case(missing, (nhs_number_valid_expr(t), "valid"))
    if rule == "birth_date":
        d = _as_date(col)
        max_age = int(item.rule_arg or 120)
        oldest_invalid = _years_before(ctx.period.end, max_age + 1)  # turns max_age + 1 on this day
        plausible = sa.and_(d > sa.literal(oldest_invalid, sa.Date), d <= sa.literal(ctx.period.end, sa.Date))
        return _case(col.is_(None), (plausible, "valid"))
    if rule == "date_not_before":
        d = _as_date(col)
        other = _as_date(_column(ctx, item.table_name, item.rule_arg or ""))
        return _case(col.is_(None), (d >= other, "valid"))
    if rule == "date_in_referral":
        d = _as_date(col)
        key = _column(ctx, item.table_name, "ServiceRequestID")
        ref_key = _column(ctx, REFERRAL_TABLE, "ServiceRequestID")
        received = _as_date(_column(ctx, REFERRAL_TABLE, "ReferralRequestReceivedDate"))
        discharge_col = _column(ctx, REFERRAL_TABLE, "ServDischDate")
        within = (
            sa.exists()
            .where(ref_key == key)
            .where(received <= d)
            .where(sa.or_(discharge_col.is_(None), d <= _as_date(discharge_col)))
        )
        return _case(col.is_(None), (within, "valid"))
    raise ValueError(f"item {item.item_id!r}: rule {rule!r} has no SQL")


def _population_expr(item: DqmiItem, ctx: _Ctx) -> ColumnElement[bool] | None:
    pop = item.population
    if pop == "all":
        return None
    if pop == "referrals_received_from_2016":
        return _as_date(_column(ctx, item.table_name, "ReferralRequestReceivedDate")) >= sa.literal(
            _MHSDS_START, sa.Date
        )
    if pop == "discharged_referrals":
        return _column(ctx, item.table_name, "ServDischDate").is_not(None)
    if pop == "closed_other_services":
        return _column(ctx, item.table_name, "ReferClosureDate").is_not(None)
    if pop == "not_scottish_gp_practice":
        gp = _column(ctx, item.table_name, item.column_name)
        return sa.or_(gp.is_(None), sa.not_(sa.func.upper(_trimmed(gp)).like(_lit("S%"))))
    if pop == "cyp_eating_disorder_referrals":
        reason = _trimmed(_column(ctx, item.table_name, "PrimReasonReferralMH"))
        patient = _column(ctx, item.table_name, "LocalPatientID")
        youngest_adult = _years_before(ctx.period.end, _CYP_AGE_LIMIT)  # born on/before: 19+ at RP end
        under_19 = (
            sa.exists()
            .where(_column(ctx, MPI_TABLE, "LocalPatientID") == patient)
            .where(_as_date(_column(ctx, MPI_TABLE, "PersonBirthDate")) > sa.literal(youngest_adult, sa.Date))
        )
        return sa.and_(reason == _lit(_EATING_DISORDER_REASON), under_19)
    raise ValueError(f"item {item.item_id!r}: population {pop!r} has no SQL")


def _table_query(items: Sequence[DqmiItem], ctx: _Ctx, table: str) -> sa.Select:
    """One SELECT counting V/O/D/I/M for every item of ``table`` plus the table's row count.

    Inner query: one category column per item (NULL outside the item's population). Outer
    query: five conditional sums per item. Only these counts come back.
    """
    tbl = ctx.tables[table]
    inner_cols = [sa.literal(1, sa.Integer).label("one")]
    for n, item in enumerate(items):
        category = _category_expr(item, ctx)
        population = _population_expr(item, ctx)
        if population is not None:
            category = sa.case((population, category), else_=sa.null())
        inner_cols.append(category.label(f"c{n}"))
    sub = sa.select(*inner_cols).select_from(tbl).subquery("vodim")
    outer: list[ColumnElement] = [sa.func.count().label("records")]
    for n in range(len(items)):
        cat_col = sub.c[f"c{n}"]
        for cat, code in _CAT_CODE.items():
            outer.append(sa.func.sum(sa.case((cat_col == code, 1), else_=0)).label(f"c{n}_{cat}"))
    return sa.select(*outer).select_from(sub)


def _snomed_focus(column: ColumnElement) -> ColumnElement[str]:
    """The focus concept of a SNOMED CT expression: text before the first ':' and any '|term|'."""
    t = _trimmed(column)
    before_colon = sa.case(
        (sa.func.strpos(t, _lit(":")) > 0, sa.func.substr(t, 1, sa.func.strpos(t, _lit(":")) - 1)), else_=t
    )
    before_pipe = sa.case(
        (
            sa.func.strpos(before_colon, _lit("|")) > 0,
            sa.func.substr(before_colon, 1, sa.func.strpos(before_colon, _lit("|")) - 1),
        ),
        else_=before_colon,
    )
    return sa.func.trim(before_pipe)


def _snomed_query(spec: DqmiItem, ctx: _Ctx, snomed_finding_schemes: Sequence[str]) -> sa.Select:
    """Distinct attended contacts, and how many have >= 1 care activity holding a valid SCTID.

    The focus concepts are extracted once in a subquery and validated there, so the Verhoeff
    SQL runs on a plain column instead of repeating the extraction at each of its steps.
    """
    contact_id = _column(ctx, spec.table_name, "CareContactID")
    attend = _trimmed(_column(ctx, spec.table_name, spec.column_name))
    act_table = spec.rule_arg or ""
    act = ctx.tables.get(act_table)
    if act is None:
        raise LookupError(f"table {act_table!r} is not in the warehouse; did dbt build run for {ctx.period}?")
    if "CareContactID" not in act.c:
        raise LookupError(
            f"column {act_table}.CareContactID is not in the warehouse; check the mart contract"
        )
    codes: list[ColumnElement[str]] = []
    if "Procedure" in act.c:
        codes.append(_snomed_focus(act.c.Procedure).label("procedure_focus"))
    if "Observation" in act.c:
        codes.append(_snomed_focus(act.c.Observation).label("observation_focus"))
    if "Finding" in act.c and "FindSchemeInUse" in act.c and snomed_finding_schemes:
        in_snomed_scheme = _trimmed(act.c.FindSchemeInUse).in_([_lit(s) for s in snomed_finding_schemes])
        codes.append(
            sa.case((in_snomed_scheme, _trimmed(act.c.Finding)), else_=sa.null()).label("snomed_finding")
        )
    if not codes:
        raise LookupError(
            f"{act_table} has none of Procedure, Observation, Finding: SNOMED CT coverage cannot be measured"
        )
    acts = (
        sa.select(act.c.CareContactID.label("contact_id"), *codes).select_from(act).subquery("activity_codes")
    )
    coded = (
        sa.select(acts.c.contact_id)
        .where(sa.or_(*(sctid_valid_expr(acts.c[c.name]) for c in codes)))
        .distinct()
        .subquery("coded_contacts")
    )
    attended = (
        sa.select(contact_id.label("contact_id"))
        .select_from(ctx.tables[spec.table_name])
        .where(contact_id.is_not(None))
        .where(attend.in_([_lit(c) for c in spec.valid_values]))
        .distinct()
        .subquery("attended_contacts")
    )
    return sa.select(
        sa.func.count().label("attended"), sa.func.count(coded.c.contact_id).label("with_snomed")
    ).select_from(attended.outerjoin(coded, attended.c.contact_id == coded.c.contact_id))


# ============================================================================================
# compute_dqmi
# ============================================================================================


def _engine(engine_or_url: Engine | sa.Connection | str | sa.URL) -> tuple[Engine | sa.Connection, bool]:
    if isinstance(engine_or_url, Engine | sa.Connection):
        return engine_or_url, False
    url = sa.make_url(engine_or_url)
    connect_args = {"read_only": True} if url.get_backend_name() == "duckdb" else {}
    return sa.create_engine(url, connect_args=connect_args), True


def _sql_type(data_type: str) -> sa.types.TypeEngine:
    """information_schema data type (DuckDB or PostgreSQL spelling) -> the SQLAlchemy type we branch on."""
    t = data_type.lower()
    if "char" in t or t in ("text", "string", "varchar"):
        return sa.String()
    if t.startswith("timestamp"):
        return sa.DateTime()
    if t == "date":
        return sa.Date()
    if t.startswith("time"):
        return sa.Time()
    if "int" in t:
        return sa.Integer()
    return sa.types.NullType()


def _reflect_tables(conn: sa.Connection, schema: str, names: Iterable[str]) -> dict[str, sa.TableClause]:
    """Lightweight table objects with the warehouse's column types (no data read).

    Read from ``information_schema.columns`` rather than the SQLAlchemy inspector: both engines
    have it, whereas duckdb_engine's inspector queries PostgreSQL catalogs DuckDB lacks.
    """
    wanted = sorted({n for n in names if n})
    cols = sa.table(
        "columns",
        sa.column("table_schema", sa.String),
        sa.column("table_name", sa.String),
        sa.column("column_name", sa.String),
        sa.column("data_type", sa.String),
        sa.column("ordinal_position", sa.Integer),
        schema="information_schema",
    )
    rows = conn.execute(
        sa.select(cols.c.table_name, cols.c.column_name, cols.c.data_type)
        .where(cols.c.table_schema == schema, cols.c.table_name.in_(wanted))
        .order_by(cols.c.table_name, cols.c.ordinal_position)
    ).all()
    by_table: dict[str, list[sa.ColumnClause]] = {}
    for table_name, column_name, data_type in rows:
        by_table.setdefault(table_name, []).append(sa.column(column_name, _sql_type(data_type)))
    return {name: sa.table(name, *columns, schema=schema) for name, columns in by_table.items()}


def _read_header(
    conn: sa.Connection, tables: dict[str, sa.TableClause], period: ReportingPeriod | None
) -> tuple[ReportingPeriod, str | None, bool]:
    """The period the warehouse holds and whether it has this period's submission header."""
    hdr = tables.get(HEADER_TABLE)
    if hdr is None:
        raise LookupError(
            f"{HEADER_TABLE} is not in the warehouse: run dbt build for the period before the DQMI"
        )
    if "ReportingPeriodStartDate" not in hdr.c:
        raise LookupError(f"{HEADER_TABLE} has no ReportingPeriodStartDate column; check the mart contract")
    provider = hdr.c.OrgIDProvider if "OrgIDProvider" in hdr.c else sa.null()
    rp_start = _as_date(hdr.c.ReportingPeriodStartDate)
    rows = conn.execute(
        sa.select(rp_start.label("rp_start"), sa.func.min(provider).label("provider"))
        .group_by(rp_start)
        .order_by(rp_start)
    ).all()
    held = {
        ReportingPeriod(r.rp_start.year, r.rp_start.month): r.provider for r in rows if r.rp_start is not None
    }
    if period is None:
        if len(held) != 1:
            raise LookupError(
                f"{HEADER_TABLE} holds {len(held)} reporting periods ({sorted(map(str, held))}); pass period= explicitly"
            )
        period = next(iter(held))
    if held and period not in held:
        raise ValueError(
            f"The warehouse holds MHSDS period(s) {sorted(map(str, held))}, not {period}: "
            f"run the pipeline (extract, dbt build) for {period} before computing its DQMI."
        )
    return period, held.get(period), period in held


def compute_dqmi(
    engine_or_url: Engine | sa.Connection | str | sa.URL,
    schema: str = "analytics",
    period: ReportingPeriod | str | None = None,
    items: Sequence[DqmiItem | str] | None = None,
    *,
    expected_records: Mapping[str, int] | None = None,
    seed_dir: Path | None = None,
) -> DqmiResult:
    """Count VODIM per DQMI item in the warehouse and score the period's MHSDS submission.

    ``engine_or_url``: a SQLAlchemy engine/connection or URL (``warehouse.sqlalchemy_url``);
    DuckDB files are opened read-only. ``period``: the reporting period (default: the one the
    warehouse's MHS000Header holds; a different period is an error, not a zero). ``items``:
    DqmiItem objects or item ids to restrict to (default: every seed row active for the period).
    ``expected_records``: optional ``{table: expected monthly records}`` (e.g. from national
    volumes); a table listed there gets coverage ``min(1, records / expected)``, others the
    submission coverage (1 if the header is present, else 0).

    A missing table or column marks its items ``error`` (with the reason) instead of aborting,
    so one absent optional table does not hide the rest of the index.
    """
    rp = ReportingPeriod.parse(period) if isinstance(period, str) else period
    if not _IDENT_RE.match(schema):
        raise ValueError(f"schema {schema!r} is not a plain schema name")
    bind, owned = _engine(engine_or_url)
    try:
        with bind.connect() if isinstance(bind, Engine) else nullcontext(bind) as conn:
            probe = _reflect_tables(conn, schema, [HEADER_TABLE])
            rp, provider, submitted = _read_header(conn, probe, rp)
            config = load_dqmi_config(rp, seed_dir)
            selected = _select_items(config.items, items)
            wanted = {i.table_name for i in selected} | {HEADER_TABLE, REFERRAL_TABLE, MPI_TABLE}
            if config.snomed is not None:
                wanted |= {config.snomed.table_name, config.snomed.rule_arg or ""}
            ctx = _Ctx(period=rp, tables=_reflect_tables(conn, schema, wanted))
            counts, errors, records = _count_items(conn, ctx, selected)
            snomed = _snomed(conn, ctx, config.snomed, seed_dir) if config.snomed is not None else None
    finally:
        if owned:
            bind.dispose()  # type: ignore[union-attr]

    base_coverage = 1.0 if submitted else 0.0
    expected = dict(expected_records or {})
    results: list[ItemResult] = []
    for item in selected:
        if item.item_id in errors:
            results.append(ItemResult(item, None, base_coverage, None, "error", errors[item.item_id]))
            continue
        c = counts[item.item_id]
        if item.table_name in expected:
            coverage = coverage_ratio(records.get(item.table_name, 0), expected[item.table_name])
        else:
            coverage = base_coverage
        score = item_score_from_vodim(c, item.default_threshold_pct)
        if score is None:
            status = "not_applicable"
        else:
            status = "passed" if score >= item.target_score else "failed"
        results.append(ItemResult(item, c, coverage, score, status))

    if expected:
        basis = (
            "expected records per table (min(1, records / expected)) for "
            + ", ".join(sorted(expected))
            + "; other tables: submission header present"
        )
    else:
        basis = (
            "submission header present for the period (1) or not (0); national expected volumes not applied"
        )
    result = DqmiResult(
        period=str(rp),
        schema=schema,
        provider=provider,
        submitted=submitted,
        method_version=config.version,
        items=tuple(results),
        dataset_target=config.dataset_target,
        snomed=snomed,
        coverage_basis=basis,
        table_records=records,
    )
    log.info(
        "DQMI %s: %d items scored, data set score %s, SNOMED CT coverage %s",
        result.period,
        len(result.scored_items),
        _fmt(result.dataset_score),
        _fmt(snomed.coverage_pct if snomed else None),
    )
    return result


def _select_items(active: Sequence[DqmiItem], items: Sequence[DqmiItem | str] | None) -> list[DqmiItem]:
    if items is None:
        return list(active)
    by_id = {i.item_id: i for i in active}
    out: list[DqmiItem] = []
    for it in items:
        if isinstance(it, DqmiItem):
            out.append(it)
        elif it in by_id:
            out.append(by_id[it])
        else:
            raise KeyError(f"DQMI item {it!r} is not active for this period; known: {sorted(by_id)}")
    return out


def _count_items(
    conn: sa.Connection, ctx: _Ctx, items: Sequence[DqmiItem]
) -> tuple[dict[str, VodimCounts], dict[str, str], dict[str, int]]:
    counts: dict[str, VodimCounts] = {}
    errors: dict[str, str] = {}
    records: dict[str, int] = {}
    by_table: dict[str, list[DqmiItem]] = {}
    for item in items:
        by_table.setdefault(item.table_name, []).append(item)
    for table, table_items in by_table.items():
        buildable: list[DqmiItem] = []
        for item in table_items:
            try:
                _category_expr(item, ctx)
                _population_expr(item, ctx)
            except LookupError as exc:
                errors[item.item_id] = str(exc)
                log.warning("DQMI %s item %s not computed: %s", ctx.period, item.item_id, exc)
                continue
            buildable.append(item)
        if not buildable:
            continue
        row = conn.execute(_table_query(buildable, ctx, table)).mappings().one()
        records[table] = int(row["records"] or 0)
        for n, item in enumerate(buildable):
            counts[item.item_id] = VodimCounts(**{cat: int(row[f"c{n}_{cat}"] or 0) for cat in CATEGORIES})
    return counts, errors, records


def _snomed(conn: sa.Connection, ctx: _Ctx, spec: DqmiItem, seed_dir: Path | None) -> SnomedCoverage:
    seed_dir = Path(seed_dir) if seed_dir else _default_seed_dir()
    schemes = [
        r["code"].strip()
        for r in _read_csv(seed_dir / f"{FINDING_SCHEME_SEED}.csv")
        if r.get("description", "").strip().upper() == "SNOMED CT"
    ]
    try:
        query = _snomed_query(spec, ctx, schemes)
    except LookupError as exc:
        log.warning("DQMI %s SNOMED CT coverage not computed: %s", ctx.period, exc)
        return SnomedCoverage(0, 0, spec.target_score, spec.valid_values, spec.source, error=str(exc))
    row = conn.execute(query).one()
    return SnomedCoverage(
        int(row.attended or 0), int(row.with_snomed or 0), spec.target_score, spec.valid_values, spec.source
    )


# ============================================================================================
# dq_results rows
# ============================================================================================


def to_check_results(result: DqmiResult) -> list[CheckResult]:
    """One ``dq_results`` row per item, plus the data set score and SNOMED CT coverage.

    measure ``valid``: numerator = records the score counts as valid (V + O + allowed defaults),
    denominator = records, rate = the exact item score / 100, threshold = target / 100.
    """
    rows: list[CheckResult] = []
    for r in result.items:
        item = r.item
        c = r.counts
        if r.status == "error":
            desc = f"{item.data_item}: not computed - {r.error}"
        elif c is None or c.total == 0:
            desc = f"{item.data_item}: no records in {POPULATIONS[item.population]}"
        else:
            desc = (
                f"{item.data_item} ({item.data_item_uid}): V {c.valid} / O {c.other} / D {c.default} / "
                f"I {c.invalid} / M {c.missing} of {c.total}; score {_fmt(r.score)} (target {_fmt(item.target_score)})"
            )
        rows.append(
            CheckResult(
                check_id=f"dqmi.{item.item_id}",
                source="dqmi",
                severity=DQMI_SEVERITY,
                status=r.status,
                measure="valid",
                suite="dqmi",
                table_name=item.table_name,
                column_name=item.column_name,
                dimension="validity",
                numerator=r.scored_records,
                denominator=None if c is None else c.total,
                rate=None if r.score is None else r.score / 100,
                threshold=item.target_score / 100,
                description=desc,
            )
        )
    score = result.dataset_score
    rows.append(
        CheckResult(
            check_id="dqmi.dataset_score",
            source="dqmi",
            severity=DQMI_SEVERITY,
            status=result.dataset_status,
            measure="valid",
            suite="dqmi",
            dimension="dqmi",
            numerator=None,
            denominator=len(result.scored_items),
            rate=None if score is None else score / 100,
            threshold=result.dataset_target / 100,
            description=(
                f"MHSDS DQMI data set score {_fmt(score)} = mean item score {_fmt(result.mean_item_score)} x "
                f"mean coverage {_fmt(result.mean_coverage, 3)} over {len(result.scored_items)} items "
                f"(method {result.method_version})"
            ),
        )
    )
    s = result.snomed
    if s is not None:
        pct = s.coverage_pct
        rows.append(
            CheckResult(
                check_id="dqmi.snomed_ct_coverage",
                source="dqmi",
                severity=DQMI_SEVERITY,
                status=s.status,
                measure="valid",
                suite="dqmi",
                table_name="mhs201_care_contact",
                column_name="AttendStatus",
                dimension="snomed_ct",
                numerator=None if s.error else s.contacts_with_snomed,
                denominator=None if s.error else s.attended_contacts,
                rate=None if pct is None else pct / 100,
                threshold=s.target / 100,
                description=(
                    f"SNOMED CT coverage: not computed - {s.error}"
                    if s.error
                    else f"{s.contacts_with_snomed} of {s.attended_contacts} attended care contacts "
                    f"(AttendStatus {', '.join(s.attended_codes)}) have a SNOMED CT coded care activity: {_fmt(pct)}%"
                ),
            )
        )
    return rows


# ============================================================================================
# Outputs: dqmi.parquet and dqmi_report.html
# ============================================================================================

DQMI_PARQUET_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("period", pa.string(), nullable=False),
        pa.field("method_version", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("data_item", pa.string()),
        pa.field("data_item_uid", pa.string()),
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("column_name", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("population", pa.string(), nullable=False),
        pa.field("valid", pa.int64()),
        pa.field("other", pa.int64()),
        pa.field("default", pa.int64()),
        pa.field("invalid", pa.int64()),
        pa.field("missing", pa.int64()),
        pa.field("total", pa.int64()),
        pa.field("valid_and_complete", pa.int64()),
        pa.field("default_threshold_pct", pa.float64()),
        pa.field("defaults_allowed", pa.float64()),
        pa.field("defaults_in_excess", pa.float64()),
        pa.field("item_score", pa.float64()),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("met_threshold", pa.bool_()),
        pa.field("coverage", pa.float64(), nullable=False),
        pa.field("included_in_score", pa.bool_(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("disclosure_controlled", pa.bool_(), nullable=False),
        pa.field("error", pa.string()),
    ]
)


def _count_out(n: int | None, controlled: bool) -> int | None:
    if n is None:
        return None
    return disclosure_control(n) if controlled else n


def _parquet_rows(result: DqmiResult, controlled: bool) -> list[dict]:
    rows = []
    for r in result.items:
        c = r.counts
        rows.append(
            {
                "period": result.period,
                "method_version": result.method_version,
                "item_id": r.item.item_id,
                "data_item": r.item.data_item,
                "data_item_uid": r.item.data_item_uid,
                "table_name": r.item.table_name,
                "column_name": r.item.column_name,
                "rule": r.item.rule,
                "population": r.item.population,
                **{cat: _count_out(None if c is None else getattr(c, cat), controlled) for cat in CATEGORIES},
                "total": _count_out(None if c is None else c.total, controlled),
                "valid_and_complete": _count_out(None if c is None else c.valid_and_complete, controlled),
                "default_threshold_pct": r.item.default_threshold_pct,
                "defaults_allowed": r.defaults_allowed,
                "defaults_in_excess": r.defaults_in_excess,
                "item_score": r.score,
                "threshold": r.item.target_score,
                "met_threshold": r.met_threshold,
                "coverage": r.coverage,
                "included_in_score": r.included,
                "status": r.status,
                "disclosure_controlled": controlled,
                "error": r.error,
            }
        )
    return rows


def _summary(result: DqmiResult) -> dict:
    s = result.snomed
    return {
        "period": result.period,
        "provider": result.provider,
        "submitted": result.submitted,
        "method_version": result.method_version,
        "method_source": METHOD_SOURCE,
        "dataset_score": result.dataset_score,
        "dataset_target": result.dataset_target,
        "dataset_status": result.dataset_status,
        "mean_item_score": result.mean_item_score,
        "mean_coverage": result.mean_coverage,
        "items_scored": len(result.scored_items),
        "coverage_basis": result.coverage_basis,
        "snomed_ct_coverage": None
        if s is None
        else {
            "attended_contacts": s.attended_contacts,
            "contacts_with_snomed": s.contacts_with_snomed,
            "coverage_pct": s.coverage_pct,
            "target": s.target,
            "status": s.status,
            "error": s.error,
        },
    }


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are read by other users (IG, publisher)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_dqmi(
    result: DqmiResult, out_dir: Path | str, *, disclosure_controlled: bool = False
) -> dict[str, Path]:
    """Write ``out_dir/dqmi.parquet`` (one row per item) and ``out_dir/dqmi_report.html``.

    Both files are deterministic (no timestamps), so re-running a period gives the same bytes,
    and each is written to a temporary file then renamed, so a reader never sees half a file.
    Counts are the provider's own record counts (internal data-quality use); pass
    ``disclosure_controlled=True`` to suppress counts under 5 and round the rest to 5 before
    sharing outside the trust (scores are unchanged: they are not counts). The data set score,
    SNOMED CT coverage and method version are in the Parquet key-value metadata under ``dqmi``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = _summary(result)
    if disclosure_controlled and summary["snomed_ct_coverage"] is not None:
        sn = summary["snomed_ct_coverage"]
        sn["attended_contacts"] = disclosure_control(sn["attended_contacts"])
        sn["contacts_with_snomed"] = disclosure_control(sn["contacts_with_snomed"])
    schema = DQMI_PARQUET_SCHEMA.with_metadata({b"dqmi": json.dumps(summary, sort_keys=True).encode()})
    table = pa.Table.from_pylist(_parquet_rows(result, disclosure_controlled), schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    parquet_path = out / "dqmi.parquet"
    _atomic_write_bytes(parquet_path, sink.getvalue().to_pybytes())
    html_path = out / "dqmi_report.html"
    _atomic_write_bytes(
        html_path, render_dqmi_html(result, disclosure_controlled=disclosure_controlled).encode("utf-8")
    )
    log.info("DQMI %s written to %s (%d items)", result.period, out, len(result.items))
    return {"parquet": parquet_path, "html": html_path}


# --------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------


def _fmt(x: float | None, dp: int = 1) -> str:
    return "-" if x is None else f"{x:.{dp}f}"


def _fmt_count(n: int | None, controlled: bool) -> str:
    if n is None:
        return "-"
    shown = disclosure_control(n) if controlled else n
    return SUPPRESSION_MARK if shown is None else f"{shown:,}"


_CSS = """
body{font-family:Arial,Helvetica,sans-serif;color:#212b32;margin:2rem;max-width:1200px}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:2px solid #005eb8}
.sub{color:#4c6272;margin-top:0}.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #d8dde0;border-left:6px solid #005eb8;padding:.8rem 1rem;min-width:12rem}
.card .v{font-size:2rem;font-weight:bold}.card.fail{border-left-color:#d5281b}.card.pass{border-left-color:#007f3b}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #d8dde0;padding:.3rem .45rem;text-align:left}
th{background:#f0f4f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#007f3b;font-weight:bold}.failed{color:#d5281b;font-weight:bold}.error{color:#d5281b}
.not_applicable{color:#4c6272}code{background:#f0f4f5;padding:0 .2rem}.small{font-size:.8rem;color:#4c6272}
"""


def render_dqmi_html(result: DqmiResult, *, disclosure_controlled: bool = False) -> str:
    """The human-readable report for information governance: self-contained, counts only."""
    e = html.escape
    score = result.dataset_score
    s = result.snomed
    dc = disclosure_controlled

    def card(label: str, value: str, note: str, status: str | None = None) -> str:
        cls = {"passed": " pass", "failed": " fail"}.get(status or "", "")
        return f'<div class="card{cls}"><div>{e(label)}</div><div class="v">{e(value)}</div><div class="small">{e(note)}</div></div>'

    cards = [
        card(
            "DQMI data set score",
            _fmt(score),
            f"target {_fmt(result.dataset_target, 0)} - {result.dataset_status.replace('_', ' ')}",
            result.dataset_status,
        ),
        card("Mean item score", _fmt(result.mean_item_score), f"{len(result.scored_items)} items with data"),
        card("Mean coverage", _fmt(result.mean_coverage, 2), "submitted / expected"),
    ]
    if s is not None:
        cards.append(
            card(
                "SNOMED CT coverage",
                "-" if s.coverage_pct is None else f"{_fmt(s.coverage_pct)}%",
                f"{_fmt_count(s.contacts_with_snomed, dc)} of {_fmt_count(s.attended_contacts, dc)} attended contacts; "
                f"target {_fmt(s.target, 0)}%",
                s.status,
            )
        )

    item_rows = []
    for r in result.items:
        c = r.counts
        cells = [
            f"<td>{e(r.item.data_item)}<br><span class='small'>{e(r.item.item_id)} &middot; {e(r.item.data_item_uid)}</span></td>",
            f"<td><code>{e(r.item.table_name)}.{e(r.item.column_name)}</code><br><span class='small'>"
            f"{e(POPULATIONS[r.item.population])}</span></td>",
        ]
        for n in (
            *(None if c is None else getattr(c, cat) for cat in CATEGORIES),
            None if c is None else c.total,
        ):
            cells.append(f"<td class='n'>{_fmt_count(n, dc)}</td>")
        thr = r.item.default_threshold_pct
        cells += [
            f"<td class='n'>{'-' if thr is None else _fmt(thr, 0) + '%'}</td>",
            f"<td class='n'>{_fmt(r.defaults_in_excess)}</td>",
            f"<td class='n'>{_fmt(r.score)}</td>",
            f"<td class='n'>{_fmt(r.item.target_score, 0)}</td>",
            f"<td class='n'>{_fmt(r.coverage, 2)}</td>",
            f"<td class='{e(r.status)}'>{e(r.status.replace('_', ' '))}"
            + (f"<br><span class='small'>{e(r.error)}</span>" if r.error else "")
            + (
                "<br><span class='small'>never populated: check the EPR mapping of this column</span>"
                if c is not None and c.total and c.missing == c.total
                else ""
            )
            + "</td>",
        ]
        item_rows.append("<tr>" + "".join(cells) + "</tr>")

    categories = "".join(
        f"<tr><th>{e(cat.title())}</th><td>{e(CATEGORY_MEANING[cat])}</td></tr>" for cat in CATEGORIES
    )
    rules = "".join(
        f"<tr><td>{e(r.item.item_id)}</td><td>{e(r.item.rule)}</td><td>{e(_rule_text(r.item))}</td><td class='small'>"
        f"{e(r.item.source)}</td></tr>"
        for r in result.items
    )
    snomed_section = ""
    if s is not None:
        snomed_section = f"""
<h2>SNOMED CT coverage</h2>
<p>Distinct attended care contacts (<code>mhs201_care_contact.AttendStatus</code> in {e(", ".join(s.attended_codes))})
with at least one care activity in <code>mhs202_care_activity</code> carrying a valid SNOMED CT concept identifier
(the focus concept of <code>Procedure</code> or <code>Observation</code>, or a <code>Finding</code> in the SNOMED CT
finding scheme; valid = 6-18 digits, concept partition, Verhoeff check digit). Target {_fmt(s.target, 0)}%
(NHS England Core Data Pack CDP_Q04).</p>
<table><tr><th>Attended contacts</th><th>With SNOMED CT</th><th>Coverage</th><th>Status</th></tr>
<tr><td class='n'>{_fmt_count(s.attended_contacts, dc)}</td><td class='n'>{_fmt_count(s.contacts_with_snomed, dc)}</td>
<td class='n'>{"-" if s.coverage_pct is None else _fmt(s.coverage_pct) + "%"}</td>
<td class='{e(s.status)}'>{e(s.status.replace("_", " "))}{"<br>" + e(s.error) if s.error else ""}</td></tr></table>
<p class="small">Source: {e(s.source)}</p>"""

    provider = f" &middot; provider {e(result.provider)}" if result.provider else ""
    dc_note = (
        "Counts are disclosure-controlled: under 5 shown as * and the rest rounded to the nearest 5 "
        "(scores are computed from the exact counts)."
        if dc
        else "Counts are exact record counts of the provider's own submission, for internal data-quality use; "
        "apply disclosure control (write_dqmi(..., disclosure_controlled=True)) before sharing outside the trust."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>MHSDS DQMI {e(result.period)}</title>
<style>{_CSS}</style></head>
<body>
<h1>MHSDS Data Quality Maturity Index (DQMI) &ndash; {e(result.period)}</h1>
<p class="sub">Local estimate computed in the warehouse (schema <code>{e(result.schema)}</code>){provider}
&middot; method version {e(result.method_version)} &middot; submission header
{"present" if result.submitted else "ABSENT (coverage 0)"}</p>
<div class="cards">{"".join(cards)}</div>

<h2>Data items</h2>
<p>Each record of an item is classed Valid, Other, Default, Invalid or Missing (VODIM). Item score =
(V + O + D &minus; defaults in excess) / records &times; 100, where defaults in excess = max(0, D &minus; default
threshold &times; records). Items with no records are not scored.</p>
<table>
<tr><th>Data item</th><th>Column / records counted</th><th>Valid</th><th>Other</th><th>Default</th><th>Invalid</th>
<th>Missing</th><th>Records</th><th>Default threshold</th><th>Defaults in excess</th><th>Item score</th>
<th>Target</th><th>Coverage</th><th>Status</th></tr>
{"".join(item_rows)}
</table>

<h2>What the VODIM categories mean</h2>
<table>{categories}</table>
{snomed_section}
<h2>Method</h2>
<ul>
<li><b>Item score</b> = (valid and complete &minus; defaults in excess) / records &times; 100, valid and complete =
V + O + D (DQMI methodology Appendix 1; NHS Digital DQMI_extracts).</li>
<li><b>Coverage</b> = submitted / expected. Basis used: {e(result.coverage_basis)}.</li>
<li><b>Data set score</b> = mean item score &times; mean coverage over the {len(result.scored_items)} items with data
(equal weights). Target {_fmt(result.dataset_target, 0)} (NHS England MHSDS DQ dashboard, CDP_Q05).</li>
<li><b>Default thresholds</b>: the published per-item thresholds were not found in public sources; items with
default codes use 0% (every default counts against the score), the conservative choice, until the versioned seed
<code>ref_dqmi_items.csv</code> is updated.</li>
<li><b>Not reproduced</b>: ODS open/closed status of organisation and GP practice codes and ONS postcode activity
(format checks stand in); integrity items (times recorded on the hour); items on tables this pipeline does not
build (MHS005, MHS006, MHS008, MHS105, MHS401, MHS503, MHS504, MHS603); specialised MH service codes;
the national DQMI's own coverage table (expected submitters over the previous 7 months).</li>
<li><b>Sources</b>: {e(METHOD_SOURCE)}.</li>
</ul>
<h2>Item rules</h2>
<table><tr><th>Item</th><th>Rule</th><th>Valid / other / default</th><th>Source</th></tr>{rules}</table>

<h2>Privacy</h2>
<p>This report holds counts and scores only: no NHS numbers, local patient identifiers, record keys, dates of
birth or postcodes. {e(dc_note)}</p>
</body></html>
"""


def _rule_text(item: DqmiItem) -> str:
    def show(values: Sequence[str], limit: int = 12) -> str:
        head = ", ".join(values[:limit])
        return head + (f" (+{len(values) - limit} more)" if len(values) > limit else "")

    parts: list[str] = []
    if item.rule in ("code_list", "code_list_first_char"):
        origin = f"{item.code_list}.csv" if item.code_list else "listed"
        first = " (first character)" if item.rule == "code_list_first_char" else ""
        parts.append(f"valid{first}: {show(item.valid_values)} [{origin}]")
    elif item.rule == "code_shape":
        parts.append(f"valid shapes (A letter, 9 digit): {show(item.valid_values)}")
    elif item.rule == "ods_code":
        parts.append("valid: ODS code format, 3 or 5 upper-case letters/digits")
    elif item.rule == "nhs_number":
        parts.append("valid: 10 digits, Modulus 11 check digit, not a repeated-digit dummy")
    elif item.rule == "birth_date":
        parts.append(f"valid: age at RP end at most {item.rule_arg or 120} and not after RP end")
    elif item.rule == "date_not_before":
        parts.append(f"valid: on or after {item.rule_arg}")
    elif item.rule == "date_in_referral":
        parts.append("valid: on or after referral received date and not after service discharge date")
    if item.other_values:
        parts.append(f"other: {show(item.other_values)}")
    if item.default_values:
        parts.append(f"default: {show(item.default_values)}")
    return "; ".join(parts)
