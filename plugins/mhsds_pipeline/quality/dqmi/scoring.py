"""DQMI scoring: the methodology's arithmetic, the result objects, and the dq_results rows.

The scoring is pure Python so it can be unit-tested on the methodology's published worked
examples (DQMI Appendix 1; dqmi_snomed.md A1.3-A1.5) without a warehouse: item score, defaults
in excess, coverage, data set score and SNOMED CT coverage. The result dataclasses carry the
counts and derive their scores from these functions, and :func:`to_check_results` turns a result
into the gate's ``dq_results`` rows. Depends on :mod:`.items` only; :mod:`.report` formats these
results, :mod:`.compute` produces them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from mhsds_pipeline.quality.dqmi.items import CATEGORIES, POPULATIONS, DqmiItem
from mhsds_pipeline.quality.results import CheckResult

#: DQMI rows in dq_results: under target is worth acting on, never a reason to withhold publication.
DQMI_SEVERITY: Final[str] = "warning"


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


def on_the_hour_pct(counts: VodimCounts) -> float | None:
    """NHS Digital's integrity rate for a "(hour)" item: % of *populated* times on the hour.

    Its numerator is every time with minute 00 (here defaults, i.e. midnight, + invalid) and its
    denominator the populated times (blanks left out), as in NHS Digital's integrity measures.
    The item score is not 100 minus this: it keeps blanks in its denominator (see the seed).
    """
    populated = counts.total - counts.missing
    if populated <= 0:
        return None
    return (counts.default + counts.invalid) / populated * 100


def on_the_hour_text(counts: VodimCounts, placeholders: Sequence[str] = ()) -> str:
    """The integrity measure in words, for dq_results and the report."""
    pct = on_the_hour_pct(counts)
    text = f"on the hour {counts.default + counts.invalid} of {counts.total - counts.missing} populated times ({_fmt(pct)}%"
    if placeholders:
        text += f", of which at {' or '.join(placeholders)}: {counts.default}"
    return text + ")"


def snomed_ct_coverage_pct(contacts_with_snomed: int, attended_contacts: int) -> float | None:
    """% attended care contacts with at least one SNOMED CT coded care activity (CDP_Q04, A2.5)."""
    if attended_contacts <= 0:
        return None
    return contacts_with_snomed / attended_contacts * 100


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
    #: IDB names of the care contact table (AttendStatus) and the care activity table it counts.
    table_name: str = ""
    activity_table: str = ""

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
    #: which records were scored: NHS England computes DQMI on the national data set, i.e. the
    #: records SDCS accepted (the gate's submit views); "every built row" is the view before rejections
    records_basis: str = "every built row"
    #: the data set score over every built row, shown beside the national-basis score
    score_before_rejections: float | None = None

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
# dq_results rows
# ============================================================================================


def _fmt(x: float | None, dp: int = 1) -> str:
    return "-" if x is None else f"{x:.{dp}f}"


def to_check_results(result: DqmiResult) -> list[CheckResult]:
    """One ``dq_results`` row per item, plus the data set score and SNOMED CT coverage.

    measure ``valid``: numerator = records the score counts as valid (V + O + allowed defaults),
    denominator = records, rate = the exact item score / 100, threshold = target / 100.
    ``table_name`` is the IDB table name (``MHS001MPI``), as in every other dq_results row.
    """
    rows: list[CheckResult] = []
    for r in result.items:
        item = r.item
        c = r.counts
        if item.not_applicable:
            desc = f"{item.data_item}: not applicable - {item.not_applicable_reason}"
        elif r.status == "error":
            desc = f"{item.data_item}: not computed - {r.error}"
        elif c is None or c.total == 0:
            desc = f"{item.data_item}: no records in {POPULATIONS[item.population]}"
        else:
            desc = (
                f"{item.data_item} ({item.data_item_uid}): V {c.valid} / O {c.other} / D {c.default} / "
                f"I {c.invalid} / M {c.missing} of {c.total}; score {_fmt(r.score)} (target {_fmt(item.target_score)})"
            )
            if item.rule == "time_not_on_hour":
                desc += "; " + on_the_hour_text(c, item.default_values)
        rows.append(
            CheckResult(
                check_id=f"dqmi.{item.item_id}",
                source="dqmi",
                severity=DQMI_SEVERITY,
                status=r.status,
                measure="valid",
                suite="dqmi",
                table_name=item.idb_table,
                column_name=item.column_name,
                dimension=item.dimension,
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
    if result.score_before_rejections is not None:
        rows.append(
            CheckResult(
                check_id="dqmi.dataset_score_before_rejections",
                source="dqmi",
                severity=DQMI_SEVERITY,
                status="passed",
                measure="valid",
                suite="dqmi",
                dimension="dqmi",
                rate=result.score_before_rejections / 100,
                description=(
                    f"DQMI data set score over every built row, before record and group rejections: "
                    f"{_fmt(result.score_before_rejections)} (not NHS England's basis; what the rejections cost "
                    f"the score: {_fmt(None if score is None else score - result.score_before_rejections)})"
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
                table_name=s.table_name,
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
