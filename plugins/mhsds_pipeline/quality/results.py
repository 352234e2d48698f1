"""The one data-quality results table: every check writes one row (``dq_results.parquet``).

One row per check per table per run, with one vocabulary:

* ``source``: ``mhsds_rule`` (an NHS England v6 rule of the catalogue, ``check_id`` its error
  code), ``local_rule`` (a catalogue rule without an NHS code, ``LOCAL_*``), ``dbt`` (dbt's
  structural tests: contracts, join keys, nothing lost), ``gx`` (the raw-extract suites),
  ``dqmi`` (DQMI items), ``file`` (file-level checks: mandatory tables, rejected share,
  reconciliation), ``volume`` (row counts against the previous published months).
* ``severity``: what happens to the data, in NHS England's words: ``file rejected``,
  ``group rejected``, ``record rejected``, ``severity 1 warning``, ``warning``, ``info``.
  ``blocks`` says whether a failure stops publication (the gate's verdict, beside it).
* ``status``: ``passed``, ``failed``, ``not_applicable``, ``error``.
* A catalogue rule is evaluated by two engines over the same SQL: the rule engine (its count,
  after the group-rejection cascade, is ``numerator``) and Great Expectations. Both counts are
  columns (``count_rule_engine``, ``count_gx``); ``engines_agree`` is false, and the status
  ``error``, when they differ or GX could not evaluate the rule.
* ``measure``: what ``numerator`` counts: ``violations`` (rows failing the check: rules, tests,
  expectations), ``valid`` (rows valid for the item: DQMI) or ``rows`` (rows in the table, against
  a usual count as ``denominator``: volume). ``rate = numerator/denominator``; a ``violations``
  check fails when rate > threshold (threshold 0 = any failure), a ``valid`` check fails when
  rate < threshold, a ``rows`` check when ``|rate - 1|`` > threshold (the allowed relative change).

Keys are pseudonymised (:func:`mhsds_pipeline.privacy.pseudonymise`); no identifiers here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pyarrow as pa

SEVERITIES = ("file rejected", "group rejected", "record rejected", "severity 1 warning", "warning", "info")
STATUSES = ("passed", "failed", "not_applicable", "error")
SOURCES = ("mhsds_rule", "local_rule", "dbt", "gx", "dqmi", "file", "volume")
MEASURES = ("violations", "valid", "rows")

DQ_RESULTS_SCHEMA = pa.schema(
    [
        pa.field("period", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("check_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("suite", pa.string()),
        pa.field("table_name", pa.string()),
        pa.field("column_name", pa.string()),
        pa.field("dimension", pa.string()),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("blocks", pa.bool_(), nullable=False),
        pa.field("measure", pa.string(), nullable=False),
        pa.field("numerator", pa.int64()),
        pa.field("denominator", pa.int64()),
        pa.field("rate", pa.float64()),
        pa.field("threshold", pa.float64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("count_rule_engine", pa.int64()),
        pa.field("count_gx", pa.int64()),
        pa.field("engines_agree", pa.bool_()),
        pa.field("description", pa.string()),
        pa.field("sample_keys", pa.list_(pa.string())),
    ]
)


@dataclass
class CheckResult:
    check_id: str
    source: str
    severity: str
    status: str
    measure: str = "violations"
    blocks: bool | None = None  # None: a failure blocks when the severity is "file rejected"
    suite: str | None = None
    table_name: str | None = None
    column_name: str | None = None
    dimension: str | None = None
    numerator: int | None = None
    denominator: int | None = None
    rate: float | None = None
    threshold: float | None = None
    count_rule_engine: int | None = None
    count_gx: int | None = None
    engines_agree: bool | None = None
    description: str | None = None
    sample_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.check_id}: severity {self.severity!r} not in {SEVERITIES}")
        if self.status not in STATUSES:
            raise ValueError(f"{self.check_id}: status {self.status!r} not in {STATUSES}")
        if self.source not in SOURCES:
            raise ValueError(f"{self.check_id}: source {self.source!r} not in {SOURCES}")
        if self.measure not in MEASURES:
            raise ValueError(f"{self.check_id}: measure {self.measure!r} not in {MEASURES}")
        if self.blocks is None:
            self.blocks = self.severity == "file rejected"
        if self.rate is None and self.numerator is not None and self.denominator:
            self.rate = self.numerator / self.denominator


def status_for(measure: str, numerator: int, denominator: int, threshold: float = 0.0) -> str:
    """passed/failed/not_applicable for a count against its threshold (see module doc)."""
    if not denominator:
        return "not_applicable"
    rate = numerator / denominator
    if measure == "violations":
        return "failed" if (numerator > 0 and rate > threshold) else "passed"
    if measure == "rows":
        return "failed" if round(abs(rate - 1), 9) > threshold else "passed"  # 1300/1000 is +30%
    return "failed" if rate < threshold else "passed"


#: Row order of dq_results: every column, so identical reruns give identical bytes (several GX
#: expectations share a check_id and table; ordering by those alone left ties to chance).
_ORDER = (
    "source", "table_name", "check_id", "column_name", "suite", "measure", "dimension", "severity",
    "blocks", "status", "description", "numerator", "denominator", "rate", "threshold", "count_rule_engine",
    "count_gx", "engines_agree", "sample_keys",
)  # fmt: skip


def _full_key(row: dict) -> tuple:
    return tuple((row[c] is not None, str(row[c]) if row[c] is not None else "") for c in _ORDER)


def to_table(period: str, run_id: str, results: list[CheckResult]) -> pa.Table:
    rows = [{"period": period, "run_id": run_id, **asdict(r)} for r in results]
    rows.sort(key=_full_key)
    return pa.Table.from_pylist(rows, schema=DQ_RESULTS_SCHEMA)


def failing(results: list[CheckResult]) -> list[CheckResult]:
    """The rows that stop publication: blocking checks that failed or could not be evaluated."""
    return [r for r in results if r.blocks and r.status in ("failed", "error")]
