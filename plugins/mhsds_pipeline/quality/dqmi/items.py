"""DQMI item definitions: the versioned seed ``ref_dqmi_items.csv`` and its code lists, loaded and checked.

Which columns the index scores, with which rule, population, default codes, thresholds and
targets, is data (a CSV seed reviewed like code), not Python. This module turns the seed rows
active for a period into :class:`DqmiItem` objects and refuses a malformed row with the line at
fault, because a wrong rule silently mis-scores. It reads the seeds as CSV files, so dbt need not
have loaded them, and knows nothing of the warehouse or of scoring: :mod:`.sql` and
:mod:`.scoring` build on it.

Table names: the seed's ``table_name`` is the warehouse relation (the dbt model, e.g.
``mhs101_referral``), because that is what the counting SQL reads and what dbt checks beside the
marts. Every output a person sees names the table by its IDB name (``MHS101Referral``), which
each item carries as ``idb_table``, taken from the dbt contracts' ``meta.idb_table``
(:func:`mhsds_pipeline.contracts.load_contracts`), the one place the two names are mapped.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from mhsds_pipeline.contracts import MARTS_YAML, load_contracts
from mhsds_pipeline.period import ReportingPeriod

SEED_FILE: Final[str] = "ref_dqmi_items.csv"
FINDING_SCHEME_SEED: Final[str] = "ref_finding_scheme"

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
        "time_not_on_hour",
    }
)
#: Rules that score an NHS Digital *integrity* measure (dimension 7) rather than a VODIM validity
#: rule: the item's dq_results row says dimension ``integrity``.
RULES_INTEGRITY: Final[frozenset[str]] = frozenset({"time_not_on_hour"})
RULE_SNOMED: Final[str] = "snomed_ct_coverage"
RULE_DATASET: Final[str] = "dataset_score"
#: A DQMI item listed but not scored (e.g. provisional diagnosis date: MHS603 has no v6 table);
#: ``rule_arg`` holds the reason a reader sees. It is reported as not applicable, never counted.
RULE_NOT_APPLICABLE: Final[str] = "not_applicable"
#: ODS organisation code lengths the ``ods_code`` rule accepts when the row gives no ``rule_arg``
#: (commissioners: 3-character CCG/ICB sub-locations, 5-character trusts and hubs).
ODS_CODE_LENGTHS: Final[tuple[int, ...]] = (3, 5)

#: Named denominators (seed column ``population``). Filters live here, not as SQL text in a CSV.
POPULATIONS: Final[dict[str, str]] = {
    "all": "every record of the table",
    "referrals_received_from_2016": "referrals received on or after 1 January 2016",
    "cyp_eating_disorder_referrals": "referrals with primary reason 12 (eating disorders) for patients under 19 at RP end",
    "discharged_referrals": "referrals with a service discharge date (closed)",
    "closed_other_services": "other-service referrals with a referral closure date",
    "not_scottish_gp_practice": "GP registrations except Scottish practices (codes starting S)",
    "column_populated": "records where the item is not null (NHS Digital counts only these)",
    "discharge_plan_created": "referrals with a discharge plan creation date",
    "discharged_spells": "hospital spells with a discharge date",
}

#: VODIM categories, in report order, with what each means for a reader in information governance.
CATEGORIES: Final[tuple[str, ...]] = ("valid", "other", "default", "invalid", "missing")
CATEGORY_MEANING: Final[dict[str, str]] = {
    "valid": "A specific, accepted value (a national code, a well-formed identifier, a plausible date).",
    "other": "An accepted code that carries little information, e.g. ethnic category Z 'not stated', "
    "consultation mechanism 98. Always counts towards the score.",
    "default": "A 'not known' placeholder, e.g. gender X, ethnic category 99, postcode ZZ99, a time of 00:00 "
    "(midnight). Counts towards the score only up to the item's default threshold (percent of records).",
    "invalid": "A value is present but is not accepted: not in the code list, wrong format, failed check "
    "digit, impossible date, a time recorded on the hour (XX:00). Never counts.",
    "missing": "Null or blank. Never counts.",
}

_IDENT_RE: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HHMM_RE: Final[re.Pattern[str]] = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_PERIOD_RE: Final[re.Pattern[str]] = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True)
class DqmiItem:
    """One row of ``ref_dqmi_items.csv``: how to classify one column into VODIM and score it.

    ``table_name`` is the warehouse relation the SQL reads (``mhs101_referral``); ``idb_table``
    is the IDB table name every output shows (``MHS101Referral``), from the dbt contracts.
    """

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
    #: IDB name of ``table_name`` (from the dbt contracts' ``meta.idb_table``), for display.
    idb_table: str = ""
    #: IDB name of ``rule_arg`` when it names a table (snomed_ct_coverage: the care activity table).
    rule_arg_idb_table: str = ""

    @property
    def not_applicable(self) -> bool:
        """Listed in the DQMI but not scored here; :attr:`not_applicable_reason` says why."""
        return self.rule == RULE_NOT_APPLICABLE

    @property
    def not_applicable_reason(self) -> str | None:
        return (self.rule_arg or "") if self.not_applicable else None

    @property
    def ods_code_lengths(self) -> tuple[int, ...]:
        """Lengths an ``ods_code`` value may have: ``rule_arg`` (pipe-separated) or 3 and 5."""
        if self.rule != "ods_code" or not self.rule_arg:
            return ODS_CODE_LENGTHS
        return tuple(int(n) for n in _split(self.rule_arg))

    @property
    def dimension(self) -> str:
        """The DQ dimension its dq_results row reports: integrity for the "(hour)" time items."""
        return "integrity" if self.rule in RULES_INTEGRITY else "validity"

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
    #: warehouse relation -> IDB table name, for every contracted mart (dbt ``meta.idb_table``).
    idb_tables: Mapping[str, str] = field(default_factory=dict)


def _default_seed_dir() -> Path:
    from mhsds_pipeline.config import load_settings

    return load_settings().dbt_project_dir / "seeds" / "reference"


def _dbt_project_dir(seed_dir: Path | None) -> Path:
    """The dbt project whose contracts name the tables: the one holding ``seed_dir`` if it is
    ``<project>/seeds/reference``, else the configured project."""
    if seed_dir is not None:
        project = Path(seed_dir).resolve().parents[1]
        if (project / MARTS_YAML).exists():
            return project
    from mhsds_pipeline.config import load_settings

    return load_settings().dbt_project_dir


def idb_table_names(dbt_project_dir: Path) -> dict[str, str]:
    """``{warehouse relation: IDB table name}`` from the dbt contracts (``meta.idb_table``)."""
    return {model: c.idb_table for model, c in load_contracts(Path(dbt_project_dir)).items()}


def with_idb_names(item: DqmiItem, idb_tables: Mapping[str, str], where: str | None = None) -> DqmiItem:
    """The item with ``idb_table`` (and ``rule_arg_idb_table`` for a table argument) filled in.

    Raises ValueError when its table is not a contracted mart: an item on a table the contracts
    do not name could only be shown under its warehouse relation name.
    """
    where = where or f"DQMI item {item.item_id!r}"
    if item.not_applicable and item.table_name not in idb_tables:
        # A table this pipeline does not build (no contract): the row names it by its IDB name.
        return replace(item, idb_table=item.table_name)
    if item.table_name not in idb_tables:
        raise ValueError(
            f"{where}: table_name {item.table_name!r} is not a dbt mart with a contract "
            f"(meta.idb_table); known: {sorted(idb_tables)}"
        )
    arg_table = ""
    if item.rule == RULE_SNOMED:
        if item.rule_arg not in idb_tables:
            raise ValueError(
                f"{where}: rule_arg {item.rule_arg!r} is not a dbt mart with a contract (meta.idb_table)"
            )
        arg_table = idb_tables[item.rule_arg]
    return replace(item, idb_table=idb_tables[item.table_name], rule_arg_idb_table=arg_table)


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


#: Sub-folders of the reference seeds that also hold code lists (the v6 national code lists).
CODE_LIST_DIRS: Final[tuple[str, ...]] = ("", "v6")


def _code_list_path(seed_dir: Path, name: str) -> Path:
    """``<seed_dir>/<name>.csv``, else ``<seed_dir>/v6/<name>.csv`` (docs/code_lists.md)."""
    for sub in CODE_LIST_DIRS:
        path = seed_dir / sub / f"{name}.csv"
        if path.exists():
            return path
    return seed_dir / f"{name}.csv"  # _read_csv names the missing file


def _code_list(seed_dir: Path, name: str) -> dict[str, str]:
    """``{code: vodim_category}`` of a reference code-list seed (in the reference seeds or v6/)."""
    rows = _read_csv(_code_list_path(seed_dir, name))
    if rows and ("code" not in rows[0] or "vodim_category" not in rows[0]):
        raise ValueError(
            f"{name}.csv has no code / vodim_category columns: it cannot serve as a DQMI code list"
        )
    return {r["code"].strip(): r["vodim_category"].strip() for r in rows}


def _item_from_row(row: dict[str, str], line: int) -> DqmiItem:
    where = f"{SEED_FILE} line {line} ({row.get('item_id')!r})"
    rule = (row.get("rule") or "").strip()
    known_rules = RULES_ITEM | {RULE_SNOMED, RULE_DATASET, RULE_NOT_APPLICABLE}
    if rule not in known_rules:
        raise ValueError(f"{where}: unknown rule {rule!r}; use one of {sorted(known_rules)}")
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
    if rule == RULE_NOT_APPLICABLE and not item.rule_arg:
        raise ValueError(f"{where}: rule not_applicable needs rule_arg = the reason the item is not scored")
    if rule == "ods_code" and item.rule_arg is not None:
        lengths = _split(item.rule_arg)
        if not lengths or not all(n.isdigit() and 0 < int(n) <= 20 for n in lengths):
            raise ValueError(
                f"{where}: rule ods_code takes rule_arg = allowed code lengths, e.g. 5|6|7|8|9; got {item.rule_arg!r}"
            )
    if rule == "code_shape" and not item.valid_values:
        raise ValueError(f"{where}: rule code_shape needs valid_values shapes (A = letter, 9 = digit)")
    if rule == "date_not_before" and not (item.rule_arg and _IDENT_RE.match(item.rule_arg)):
        raise ValueError(f"{where}: rule date_not_before needs rule_arg = the column it must not precede")
    if rule == "birth_date" and item.rule_arg is not None and not item.rule_arg.isdigit():
        raise ValueError(
            f"{where}: rule birth_date takes rule_arg = maximum age in years, got {item.rule_arg!r}"
        )
    if rule == "time_not_on_hour":
        if item.code_list or item.valid_values or item.other_values:
            raise ValueError(
                f"{where}: rule time_not_on_hour takes no code list, valid or other values "
                "(valid = a time not on the hour); only default_values = HH:MM placeholder times"
            )
        bad = [v for v in item.default_values if not _HHMM_RE.match(v) or not v.endswith(":00")]
        if bad:
            raise ValueError(
                f"{where}: time_not_on_hour default_values must be on-the-hour times HH:00 "
                f"(e.g. 00:00 midnight), got {bad}"
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


def load_dqmi_config(
    period: ReportingPeriod | str | None = None,
    seed_dir: Path | None = None,
    dbt_project_dir: Path | None = None,
) -> DqmiConfig:
    """The DQMI rows of ``ref_dqmi_items.csv`` that apply to ``period`` (all rows if None).

    Code-list items get their valid codes from the referenced seed. Each item's IDB table name
    comes from the contracts of ``dbt_project_dir`` (default: the project holding ``seed_dir``,
    else the configured one). Raises ValueError with the line and item at fault for anything
    malformed, because a wrong rule silently mis-scores.
    """
    idb_tables = idb_table_names(dbt_project_dir or _dbt_project_dir(seed_dir))
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
        if item.rule != RULE_DATASET:
            item = with_idb_names(item, idb_tables, f"{SEED_FILE} line {line} ({item.item_id!r})")
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
        idb_tables=idb_tables,
    )


def _snomed_finding_schemes(seed_dir: Path | None) -> list[str]:
    """The ``ref_finding_scheme`` codes that mean SNOMED CT (a Finding in them is a SNOMED CT code)."""
    seed_dir = Path(seed_dir) if seed_dir else _default_seed_dir()
    return [
        r["code"].strip()
        for r in _read_csv(seed_dir / f"{FINDING_SCHEME_SEED}.csv")
        if r.get("description", "").strip().upper() == "SNOMED CT"
    ]
