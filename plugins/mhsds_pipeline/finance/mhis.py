"""The Mental Health Investment Standard: target, compliance and forecast (exact, in pence).

The rule (mhis_ltp.md A1) and its variants by year live in the seed ``ref_mhis_rule_variant``;
this module is the one implementation of the arithmetic::

    target_y  = baseline × (1 + (base_growth_y + additional_uplift_y) / 100)
                [+ prior-year shortfall, when the year's rule adds it (2019/20)]
    baseline  = MHIS-eligible outturn of year y-1, on this year's (restated) categorisation
    met       = spend ≥ target   (gte)   or   spend > target   (gt, 2022/23 "by more than")

When the year's rule gives an NHS England-supplied target precedence (2023/24 onward) and the
allocations carry one, that target is used instead of the calculated one.

In year: ``forecast outturn = YTD MHIS spend / months with ledger data × 12`` (the run rate) and
the compliance flag compares the forecast with the target; ``YTD target = target × months / 12``
(flat phasing). MHIS-eligible spend is what the dbt finance marts flag ``in_mhis_scope``: both
its category (ref_mhis_category) and its funding source (ref_mhis_funding_source) are eligible;
everything else is reported by exclusion reason, never dropped.

All money is ``Decimal``, rounded half-up to the penny at each published figure.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from mhsds_pipeline.finance.schema import financial_year, fy_label, fy_months, fy_start_year

PENNY = Decimal("0.01")
ZERO = Decimal("0")
HUNDRED = Decimal("100")


class MhisError(ValueError):
    """The inputs cannot give an MHIS position (which year, what is missing, what to do)."""


def money(value: object) -> Decimal:
    """A money amount rounded half-up to the penny."""
    return Decimal(str(value)).quantize(PENNY, rounding=ROUND_HALF_UP) if value is not None else ZERO


def _dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class RuleVariant:
    """One year's MHIS rule (a row of ref_mhis_rule_variant)."""

    financial_year: str
    rule_version: str
    additional_uplift_pct: Decimal = ZERO
    add_prior_year_shortfall: bool = False
    comparison: str = "gte"  # gte | gt
    nhse_target_precedence: bool = False
    rule_text: str = ""

    def __post_init__(self) -> None:
        if self.comparison not in ("gte", "gt"):
            raise MhisError(
                f"MHIS rule {self.rule_version}: comparison must be gte or gt, not {self.comparison!r}"
            )


@dataclass(frozen=True)
class Target:
    financial_year: str
    rule_version: str
    baseline_gbp: Decimal
    base_growth_pct: Decimal
    additional_uplift_pct: Decimal
    prior_year_shortfall_gbp: Decimal
    calculated_target_gbp: Decimal
    nhse_target_gbp: Decimal | None
    target_gbp: Decimal
    target_basis: str  # calculated | nhse
    comparison: str


def mhis_target(
    baseline: Decimal | float | str,
    base_growth_pct: Decimal | float | str,
    rule: RuleVariant,
    prior_year_shortfall: Decimal | float | str = ZERO,
    nhse_target: Decimal | float | str | None = None,
) -> Target:
    """The year's MHIS target spend (see the module docstring for the rule)."""
    baseline_d, growth = money(baseline), _dec(base_growth_pct)
    shortfall = money(prior_year_shortfall) if rule.add_prior_year_shortfall else ZERO
    uplift = growth + _dec(rule.additional_uplift_pct)
    calculated = money(baseline_d * (1 + uplift / HUNDRED) + max(shortfall, ZERO))
    nhse = money(nhse_target) if nhse_target is not None else None
    use_nhse = rule.nhse_target_precedence and nhse is not None
    return Target(
        financial_year=rule.financial_year,
        rule_version=rule.rule_version,
        baseline_gbp=baseline_d,
        base_growth_pct=growth,
        additional_uplift_pct=_dec(rule.additional_uplift_pct),
        prior_year_shortfall_gbp=shortfall,
        calculated_target_gbp=calculated,
        nhse_target_gbp=nhse,
        target_gbp=nhse if use_nhse else calculated,
        target_basis="nhse" if use_nhse else "calculated",
        comparison=rule.comparison,
    )


def meets_standard(spend: Decimal | float | str, target: Decimal | float | str, comparison: str) -> bool:
    """Whether MHIS spend meets the target under the year's comparison (gte or gt)."""
    spend_d, target_d = money(spend), money(target)
    if comparison == "gt":
        return spend_d > target_d
    if comparison == "gte":
        return spend_d >= target_d
    raise MhisError(f"comparison must be gte or gt, not {comparison!r}")


def forecast_outturn(ytd: Decimal | float | str, months_with_data: int) -> Decimal:
    """Year-end outturn from the year-to-date run rate (12 months of data: the actual)."""
    if not 1 <= months_with_data <= 12:
        raise MhisError(f"a run-rate forecast needs 1-12 months of ledger data, got {months_with_data}")
    return money(_dec(ytd) / months_with_data * 12)


def shortfall(spend: Decimal | float | str, target: Decimal | float | str) -> Decimal:
    """How far spend fell short of the target (0 when met)."""
    return max(money(target) - money(spend), ZERO)


# ---------------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------------


def _bool(text: object) -> bool:
    return str(text).strip().lower() in ("true", "t", "1", "yes", "y")


def rule_variant_from_row(row: Mapping) -> RuleVariant:
    return RuleVariant(
        financial_year=str(row["financial_year"]),
        rule_version=str(row["rule_version"]),
        additional_uplift_pct=_dec(row.get("additional_uplift_pct") or 0),
        add_prior_year_shortfall=_bool(row.get("add_prior_year_shortfall")),
        comparison=str(row.get("comparison") or "gte"),
        nhse_target_precedence=_bool(row.get("nhse_target_precedence")),
        rule_text=str(row.get("rule_text") or ""),
    )


def rule_variants_from_csv(path: Path) -> dict[str, RuleVariant]:
    """ref_mhis_rule_variant.csv keyed by financial year."""
    with open(path, newline="") as fh:
        return {r["financial_year"]: rule_variant_from_row(r) for r in csv.DictReader(fh)}


def read_seed(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------
# The position from the finance marts
# ---------------------------------------------------------------------------------------------


@dataclass
class MhisResult:
    period: str
    financial_year: str
    position: list[dict]  # prior year (final) and this year (forecast)
    categories: list[dict]
    exclusions: list[dict]
    ledger_months: list[str]
    ledger_months_missing: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def current(self) -> dict:
        return self.position[-1]


def _sum(rows: Iterable[Mapping], amount: str, **where) -> Decimal:
    total = ZERO
    for r in rows:
        if all(r.get(k) == v for k, v in where.items()):
            total += _dec(r[amount])
    return money(total)


def _month(value) -> str:
    return value.strftime("%Y-%m") if hasattr(value, "strftime") else str(value)[:7]


def mhis_position(
    spend_rows: Iterable[Mapping],
    outturn_rows: Iterable[Mapping],
    allocation_rows: Iterable[Mapping],
    period: str,
    category_names: Mapping[str, str] | None = None,
) -> MhisResult:
    """The MHIS position at ``period``: the prior year's final result and this year's forecast.

    ``spend_rows``: mhis_spend_monthly rows (month_start, mhis_category, in_mhis_scope,
    exclusion_reason, amount_gbp); ``outturn_rows``: mhis_outturn rows; ``allocation_rows``:
    mhis_allocation rows (allocation growth with the year's rule variant).
    """
    spend = [dict(r, _month=_month(r["month_start"])) for r in spend_rows]
    outturn = list(outturn_rows)
    allocations = {r["financial_year"]: r for r in allocation_rows}
    names = dict(category_names or {})
    fy = financial_year(period)
    y = fy_start_year(fy)
    prior, prior2 = fy_label(y - 1), fy_label(y - 2)
    notes: list[str] = []

    def rule_for(year: str) -> tuple[RuleVariant, Mapping]:
        alloc = allocations.get(year)
        if alloc is None:
            raise MhisError(
                f"MHIS {period}: no programme allocation for {year} in the finance extract (allocations table)."
            )
        if not alloc.get("rule_version"):
            raise MhisError(
                f"MHIS {period}: no MHIS rule variant for {year}; add a row for {year} to "
                "dbt_project/seeds/finance/ref_mhis_rule_variant.csv."
            )
        return rule_variant_from_row(alloc), alloc

    def eligible_outturn(year: str) -> Decimal | None:
        rows = [r for r in outturn if r["financial_year"] == year]
        if not rows:
            return None
        return _sum(rows, "outturn_gbp", in_mhis_scope=True)

    baseline = eligible_outturn(prior)
    if baseline is None:
        raise MhisError(
            f"MHIS {period}: the finance extract has no outturn for {prior}, the baseline of {fy}; "
            "load the audited outturn (outturn table) before running MHIS."
        )

    position: list[dict] = []
    # Prior year: final, from its audited outturn (when the year before it is known too).
    prior_target: Target | None = None
    baseline2 = eligible_outturn(prior2)
    if baseline2 is not None and prior in allocations:
        rule_p, alloc_p = rule_for(prior)
        if rule_p.add_prior_year_shortfall:
            notes.append(
                f"{prior}: the rule adds the {prior2} shortfall, which needs {fy_label(y - 3)}: taken as 0."
            )
        prior_target = mhis_target(
            baseline2, alloc_p["base_growth_pct"], rule_p, ZERO, alloc_p.get("nhse_target_gbp")
        )
        position.append(_position_row(prior_target, prior, "outturn", 12, [], baseline, baseline, baseline2))
    else:
        notes.append(f"{prior}: no {prior2} outturn in the extract, so no final result for {prior}.")

    # This year: year to date and run-rate forecast.
    rule, alloc = rule_for(fy)
    short = ZERO
    if rule.add_prior_year_shortfall:
        if prior_target is None:
            notes.append(f"{fy}: the rule adds the {prior} shortfall, which cannot be computed: taken as 0.")
        else:
            short = shortfall(baseline, prior_target.target_gbp)
    target = mhis_target(baseline, alloc["base_growth_pct"], rule, short, alloc.get("nhse_target_gbp"))
    months = [m for m in fy_months(fy) if m <= period]
    present = sorted({r["_month"] for r in spend if r["_month"] in months})
    missing = [m for m in months if m not in present]
    if not present:
        raise MhisError(f"MHIS {period}: the ledger has no {fy} postings up to {period}.")
    if missing:
        notes.append(
            f"{fy}: no ledger postings for {', '.join(missing)}; the run rate uses {len(present)} months."
        )
    fy_spend = [r for r in spend if r["_month"] in present]
    ytd = _sum(fy_spend, "amount_gbp", in_mhis_scope=True)
    position.append(_position_row(target, fy, "ytd_forecast", len(present), missing, ytd, None, baseline))

    categories = _categories(fy, period, target, fy_spend, outturn, prior, len(present), names)
    exclusions = _exclusions(fy, prior, fy_spend, outturn, names)
    return MhisResult(period, fy, position, categories, exclusions, present, missing, notes)


def _position_row(
    target: Target,
    year: str,
    basis: str,
    months: int,
    missing: list[str],
    ytd: Decimal,
    final: Decimal | None,
    baseline: Decimal,
) -> dict:
    forecast = final if final is not None else forecast_outturn(ytd, months)
    ytd_target = money(target.target_gbp * months / 12)
    growth = (forecast / baseline - 1) * HUNDRED if baseline else None
    return {
        "financial_year": year,
        "basis": basis,
        "months_with_ledger_data": months,
        "ledger_months_missing": ",".join(missing),
        "rule_version": target.rule_version,
        "comparison": target.comparison,
        "baseline_outturn_gbp": target.baseline_gbp,
        "base_growth_pct": float(target.base_growth_pct),
        "additional_uplift_pct": float(target.additional_uplift_pct),
        "prior_year_shortfall_gbp": target.prior_year_shortfall_gbp,
        "calculated_target_gbp": target.calculated_target_gbp,
        "nhse_target_gbp": target.nhse_target_gbp,
        "target_gbp": target.target_gbp,
        "target_basis": target.target_basis,
        "ytd_mhis_spend_gbp": ytd,
        "ytd_target_gbp": ytd_target,
        "ytd_variance_gbp": money(ytd - ytd_target),
        "forecast_outturn_gbp": forecast,
        "forecast_variance_gbp": money(forecast - target.target_gbp),
        "mhis_growth_pct": round(float(growth), 3) if growth is not None else None,
        "meets_standard": meets_standard(forecast, target.target_gbp, target.comparison),
    }


def _categories(
    fy: str,
    period: str,
    target: Target,
    fy_spend: list[dict],
    outturn: list[Mapping],
    prior: str,
    months: int,
    names: Mapping[str, str],
) -> list[dict]:
    """Spend vs an indicative target by category: the total target apportioned by each
    category's share of the MHIS baseline (so the category targets add up to the target)."""
    base: dict[str, Decimal] = defaultdict(lambda: ZERO)
    gross_prior: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for r in outturn:
        if r["financial_year"] == prior:
            gross_prior[r["mhis_category"]] += _dec(r["outturn_gbp"])
            if r["in_mhis_scope"]:
                base[r["mhis_category"]] += _dec(r["outturn_gbp"])
    eligible: dict[str, Decimal] = defaultdict(lambda: ZERO)
    gross: dict[str, Decimal] = defaultdict(lambda: ZERO)
    scope: dict[str, bool] = {}
    for r in fy_spend:
        cat = r["mhis_category"]
        gross[cat] += _dec(r["amount_gbp"])
        if r["in_mhis_scope"]:
            eligible[cat] += _dec(r["amount_gbp"])
            scope[cat] = True
    for r in outturn:
        if r["in_mhis_scope"]:
            scope[r["mhis_category"]] = True
    total_base = sum(base.values(), ZERO)
    rows = []
    for cat in sorted(set(gross) | set(gross_prior)):
        in_scope = scope.get(cat, False)
        cat_target = money(target.target_gbp * base[cat] / total_base) if in_scope and total_base else None
        ytd = money(eligible[cat])
        forecast = forecast_outturn(ytd, months) if in_scope else None
        ytd_target = money(cat_target * months / 12) if cat_target is not None else None
        rows.append(
            {
                "financial_year": fy,
                "period": period,
                "mhis_category": cat,
                "category_name": names.get(cat, cat),
                "in_mhis_scope": in_scope,
                "prior_year_outturn_gbp": money(gross_prior[cat]),
                "prior_year_mhis_outturn_gbp": money(base[cat]),
                "target_gbp": cat_target,
                "ytd_spend_gbp": money(gross[cat]),
                "ytd_mhis_spend_gbp": ytd,
                "ytd_excluded_gbp": money(gross[cat] - eligible[cat]),
                "ytd_target_gbp": ytd_target,
                "ytd_variance_gbp": money(ytd - ytd_target) if ytd_target is not None else None,
                "forecast_outturn_gbp": forecast,
                "forecast_variance_gbp": money(forecast - cat_target) if cat_target is not None else None,
            }
        )
    return rows


def _exclusions(
    fy: str, prior: str, fy_spend: list[dict], outturn: list[Mapping], names: Mapping[str, str]
) -> list[dict]:
    ytd: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    prev: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for r in fy_spend:
        if not r["in_mhis_scope"]:
            ytd[(r["exclusion_reason"], r["mhis_category"])] += _dec(r["amount_gbp"])
    for r in outturn:
        if r["financial_year"] == prior and not r["in_mhis_scope"]:
            prev[(r["exclusion_reason"], r["mhis_category"])] += _dec(r["outturn_gbp"])
    return [
        {
            "financial_year": fy,
            "exclusion_reason": reason,
            "mhis_category": cat,
            "category_name": names.get(cat, cat),
            "ytd_excluded_gbp": money(ytd[(reason, cat)]),
            "prior_year_excluded_gbp": money(prev[(reason, cat)]),
        }
        for reason, cat in sorted(set(ytd) | set(prev), key=lambda k: (str(k[0]), k[1]))
    ]


def as_dict(target: Target) -> dict:
    return asdict(target)
