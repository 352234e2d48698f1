"""Synthetic finance extract for the MHIS pipeline, consistent with the synthetic EPR.

One cost centre per EPR care team (``CC1001`` <-> team ``T001``, same service line), plus three
cost centres with no EPR team (a learning disability team, NHS Talking Therapies, out of area
placements), so that spend can be set beside MHSDS activity on the PLICS-style keys (cost
centre, service line, team) and every MHIS exclusion has something to exclude.

For an end period ``YYYY-MM`` in financial year FY it writes:

* ``ledger_lines`` for every month of FY-1 and of FY up to the end period (pay, admin pay and
  non-pay per cost centre and month; part of some services funded by service development
  funding; winter in-year money for crisis teams; residual COVID-19 spend in April-June 2025);
* ``outturn`` for FY-2 and FY-1 (each = that year's ledger plus audited year-end adjustments);
* ``allocations`` for FY-2, FY-1 and FY (base growth pre-convergence; no NHSE target issued);
* ``cost_centres``.

Volumes: annual costs are given at scale 1 (a county trust of ~£110m, ~31,000 contacts a month,
like the EPR at scale 1) and multiplied by ``scale``, so spend per contact stays realistic at
any EPR scale. Each year grows by that year's allocation growth plus a cost-centre drift, and
every random draw has its own stream per year or month: same seed and scale => the same figures
for a month or a year, whatever end period is generated.

Writes Parquet (default) or CSV files into a directory (``data/finance/``), or tables into a
database given a SQLAlchemy URL (PostgreSQL in production, SQLite in tests)::

    python -m mhsds_pipeline.finance.generator --end-period 2026-10 --scale 0.1 --out data/finance
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa

from mhsds_pipeline.finance.schema import (
    SCHEMAS,
    TABLE_NAMES,
    financial_year,
    fy_label,
    fy_months,
    fy_start_year,
)
from mhsds_pipeline.synthetic import codes

log = logging.getLogger(__name__)

#: Annual cost of each EPR service at scale 1 (financial year FY-2, £), and the share of it funded
#: by service development funding (SDF: excluded from MHIS). Split evenly between its teams.
SERVICE_COSTS: dict[str, tuple[float, float]] = {
    "CAMHS_CORE": (9_200_000, 0.0),
    "CAMHS_NEURO": (2_600_000, 0.0),
    "CAMHS_MHST": (2_400_000, 0.85),
    "CAMHS_ED": (1_000_000, 0.0),
    "ADULT_CMHT": (15_000_000, 0.0),
    "ADULT_PCMH": (6_800_000, 0.35),
    "ADULT_ED": (1_300_000, 0.0),
    "OLDER_CMHT": (5_200_000, 0.0),
    "MEMORY": (3_100_000, 0.0),
    "PERINATAL": (1_500_000, 0.2),
    "EIP": (2_100_000, 0.0),
    "CRISIS": (7_400_000, 0.0),
    "CRISIS_LINE": (1_600_000, 0.3),
    "IPS": (700_000, 0.5),
    "LIAISON": (1_900_000, 0.0),
    "IP_ACUTE": (17_500_000, 0.0),
    "IP_OLDER": (6_200_000, 0.0),
    "IP_PICU": (4_600_000, 0.0),
    "IP_REHAB": (2_300_000, 0.0),
    "IP_CYP": (3_600_000, 0.0),
}


@dataclass(frozen=True)
class CostCentre:
    cost_centre: str
    name: str
    service_line: str
    team_local_id: str | None
    annual_cost: float  # FY-2, scale 1
    sdf_share: float
    placements: bool = False  # purchased care: one noisy non-pay line


def cost_centres() -> tuple[CostCentre, ...]:
    """The trust's cost centres: one per EPR team, then those with no EPR team."""
    teams_per_service: dict[int, int] = {}
    for t in codes.TEAMS:
        teams_per_service[t.service] = teams_per_service.get(t.service, 0) + 1
    out = []
    for t in codes.TEAMS:
        svc = codes.SERVICES[t.service]
        cost, sdf = SERVICE_COSTS[svc.code]
        number = int(t.team_id[1:])
        out.append(
            CostCentre(
                cost_centre=f"CC{1000 + number}",
                name=t.name,
                service_line=svc.service_line,
                team_local_id=t.team_id,
                annual_cost=cost / teams_per_service[t.service],
                sdf_share=sdf,
            )
        )
    out += [
        CostCentre(
            "CC1901", "Community Learning Disability Team", "LEARNING_DISABILITY", None, 4_500_000, 0.0
        ),
        CostCentre("CC1902", "NHS Talking Therapies", "TALKING_THERAPIES", None, 7_200_000, 0.1),
        CostCentre("CC1903", "Adult acute out of area placements", "INPATIENT", None, 1_800_000, 0.0, True),
    ]
    return tuple(out)


SUBJECTIVES = (
    ("51000", "Pay - clinical staff", 0.72),
    ("59000", "Pay - admin and support staff", 0.10),
    ("71000", "Non-pay - clinical supplies and services", 0.18),
)
PLACEMENTS_SUBJECTIVE = ("73000", "Non-pay - purchase of healthcare (placements)")
WINTER_SERVICE_LINES = {"CRISIS"}
COVID_SERVICE_CODES = {"IP_ACUTE", "IP_OLDER"}
#: The one year with residual COVID-19 (infection control) spend, April-June: an exclusion to exclude.
COVID_RESIDUAL_FY = "2025/26"
#: ICB programme allocation at scale 1 (FY-2); MH spend is ~11.5% of it (mhis_ltp.md A7).
PROGRAMME_ALLOCATION = 1_230_000_000.0


@dataclass
class FinanceExtract:
    tables: dict[str, pa.Table]
    summary: dict


def _money(values) -> pa.Array:
    return pa.array(
        [Decimal(f"{v:.2f}") for v in values], type=SCHEMAS["ledger_lines"].field("amount_gbp").type
    )


def _pct(values) -> pa.Array:
    return pa.array(
        [Decimal(f"{v:.3f}") for v in values], type=SCHEMAS["allocations"].field("base_growth_pct").type
    )


#: Financial year whose costs SERVICE_COSTS gives (other years compound the allocation growth).
BASE_FY_START = 2024


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """One independent stream per component and year/month, so a month's figures do not depend
    on how many months are generated (re-running a later end period keeps earlier months)."""
    return np.random.default_rng([seed, *stream])


def _year_parameters(seed: int, fy_start: int, n: int) -> tuple[float, float, np.ndarray]:
    """(allocation base growth %, convergence adjustment %, per-cost-centre drift in points)."""
    rng = _rng(seed, 10, fy_start)
    growth = round(float(rng.uniform(2.6, 4.4)), 2)
    convergence = round(float(rng.uniform(-0.8, 0.0)), 2)
    return growth, convergence, rng.normal(0.0, 1.2, size=n)


def _growth_factors(seed: int, fy_start: int, n: int, with_drift: bool) -> list[tuple[int, np.ndarray]]:
    """(+1 multiply | -1 divide, factor) steps from BASE_FY_START to ``fy_start``."""
    if fy_start >= BASE_FY_START:
        years, sign = range(BASE_FY_START + 1, fy_start + 1), 1
    else:
        years, sign = range(BASE_FY_START, fy_start, -1), -1
    steps = []
    for year in years:
        growth, convergence, drift = _year_parameters(seed, year, n)
        extra = drift if with_drift else convergence
        steps.append((sign, 1 + (growth + extra) / 100))
    return steps


def annual_costs(seed: int, fy_start: int, ccs: tuple[CostCentre, ...], scale: float) -> np.ndarray:
    """Each cost centre's annual cost in a financial year: SERVICE_COSTS in BASE_FY_START, each
    later year grown by the allocation growth plus a cost-centre drift (earlier years deflated)."""
    costs = np.array([c.annual_cost * scale for c in ccs])
    for sign, factor in _growth_factors(seed, fy_start, len(ccs), with_drift=True):
        costs = costs * factor if sign > 0 else costs / factor
    return costs


def allocation(seed: int, fy_start: int, scale: float) -> float:
    """The ICB programme allocation of a year (grown by base growth plus convergence)."""
    value = PROGRAMME_ALLOCATION * scale
    for sign, factor in _growth_factors(seed, fy_start, 0, with_drift=False):
        value = value * float(factor) if sign > 0 else value / float(factor)
    return value


def generate_finance(*, end_period: str, scale: float = 1.0, seed: int = 42) -> FinanceExtract:
    """Build the synthetic finance extract in memory (deterministic in seed and scale; a month's
    figures are the same whatever the end period)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    fy = financial_year(end_period)
    y = fy_start_year(fy)
    fys = [fy_label(y - 2), fy_label(y - 1), fy]
    ccs = cost_centres()
    n = len(ccs)
    annual = np.vstack([annual_costs(seed, y - 2 + k, ccs, scale) for k in range(3)])
    params = [_year_parameters(seed, y - 2 + k, n) for k in range(3)]
    growth = [p[0] for p in params]
    convergence = [p[1] for p in params]

    # --- ledger lines: FY-2 and FY-1 complete, FY to the end period (FY-2 is kept internal: it
    # only feeds the FY-2 outturn, so every year's outturn is its own ledger plus adjustments) ---
    months = fy_months(fys[0]) + fy_months(fys[1]) + [m for m in fy_months(fy) if m <= end_period]
    rows: dict[str, list] = {k: [] for k in SCHEMAS["ledger_lines"].names}

    def post(period: str, cc: CostCentre, subj: tuple[str, str], fund: str, amount: float) -> None:
        rows["financial_year"].append(financial_year(period))
        rows["period"].append(period)
        rows["cost_centre"].append(cc.cost_centre)
        rows["service_line"].append(cc.service_line)
        rows["subjective_code"].append(subj[0])
        rows["subjective_name"].append(subj[1])
        rows["funding_source"].append(fund)
        rows["amount_gbp"].append(round(amount, 2))

    svc_code = {f"CC{1000 + int(t.team_id[1:])}": codes.SERVICES[t.service].code for t in codes.TEAMS}
    for period in months:
        k = fys.index(financial_year(period))
        month_no = int(period[5:])
        rng = _rng(seed, 20, int(period[:4]), month_no)
        noise = rng.normal(0.0, 0.025, size=n)
        for i, cc in enumerate(ccs):
            monthly = annual[k, i] / 12
            if cc.placements:
                amount = monthly * max(0.2, 1 + rng.normal(0.0, 0.25))
                post(period, cc, PLACEMENTS_SUBJECTIVE, "BASELINE", amount)
                continue
            for code, name, share in SUBJECTIVES:
                amount = monthly * share * (1 + noise[i])
                sdf = amount * cc.sdf_share
                post(period, cc, (code, name), "BASELINE", amount - sdf)
                if sdf:
                    post(period, cc, (code, name), "SDF", sdf)
            if cc.service_line in WINTER_SERVICE_LINES and month_no in (12, 1, 2, 3):
                post(period, cc, SUBJECTIVES[0][:2], "IN_YEAR", 45_000 * scale * (1 + rng.normal(0, 0.1)))
            if (
                fys[k] == COVID_RESIDUAL_FY
                and svc_code.get(cc.cost_centre) in COVID_SERVICE_CODES
                and month_no in (4, 5, 6)
            ):
                post(period, cc, SUBJECTIVES[2][:2], "COVID", 6_000 * scale * (1 + rng.normal(0, 0.2)))
    order = sorted(
        range(len(rows["period"])),
        key=lambda j: (
            rows["period"][j],
            rows["cost_centre"][j],
            rows["subjective_code"][j],
            rows["funding_source"][j],
        ),
    )
    ledger_all = {k: [v[j] for j in order] for k, v in rows.items() if k != "line_id"}

    # --- outturn: each of FY-2 and FY-1 = its ledger + audited year-end adjustments ------------
    out_rows: list[tuple[str, str, str, float]] = []
    for k in (0, 1):
        totals: dict[tuple[str, str], float] = {}
        for j, year in enumerate(ledger_all["financial_year"]):
            if year == fys[k]:
                key = (ledger_all["cost_centre"][j], ledger_all["funding_source"][j])
                totals[key] = totals.get(key, 0.0) + ledger_all["amount_gbp"][j]
        rng = _rng(seed, 30, y - 2 + k)
        for (cc_id, fund), amount in sorted(totals.items()):
            adjustment = amount * rng.normal(0.0, 0.004) if fund == "BASELINE" else 0.0
            out_rows.append((fys[k], cc_id, fund, amount + adjustment))

    keep = [j for j, year in enumerate(ledger_all["financial_year"]) if year != fys[0]]
    ledger = {k: [v[j] for j in keep] for k, v in ledger_all.items()}
    ledger["line_id"] = [f"GL{j + 1:07d}" for j in range(len(keep))]
    ledger_tbl = pa.table(
        {
            name: (_money(ledger[name]) if name == "amount_gbp" else pa.array(ledger[name], pa.string()))
            for name in SCHEMAS["ledger_lines"].names
        },
        schema=SCHEMAS["ledger_lines"],
    )
    outturn = pa.table(
        {
            "financial_year": pa.array([r[0] for r in out_rows], pa.string()),
            "cost_centre": pa.array([r[1] for r in out_rows], pa.string()),
            "funding_source": pa.array([r[2] for r in out_rows], pa.string()),
            "outturn_gbp": _money([r[3] for r in out_rows]),
            "status": pa.array(["audited"] * len(out_rows), pa.string()),
        },
        schema=SCHEMAS["outturn"],
    )

    # --- allocations -------------------------------------------------------------------------
    alloc = [allocation(seed, y - 2 + k, scale) for k in range(3)]
    allocations = pa.table(
        {
            "financial_year": pa.array(fys, pa.string()),
            "programme_allocation_gbp": _money(alloc),
            "base_growth_pct": _pct(growth),
            "convergence_adjustment_pct": _pct(convergence),
            "nhse_target_gbp": pa.nulls(3, SCHEMAS["allocations"].field("nhse_target_gbp").type),
        },
        schema=SCHEMAS["allocations"],
    )
    cc_tbl = pa.table(
        {
            "cost_centre": [c.cost_centre for c in ccs],
            "cost_centre_name": [c.name for c in ccs],
            "service_line": [c.service_line for c in ccs],
            "team_local_id": [c.team_local_id for c in ccs],
        },
        schema=SCHEMAS["cost_centres"],
    )
    tables = {
        "cost_centres": cc_tbl,
        "ledger_lines": ledger_tbl,
        "outturn": outturn,
        "allocations": allocations,
    }
    summary = {
        "seed": seed,
        "scale": scale,
        "end_period": end_period,
        "financial_years": fys,
        "ledger_months": [ledger["period"][0], ledger["period"][-1]],
        "row_counts": {k: t.num_rows for k, t in tables.items()},
        "synthetic": True,
    }
    return FinanceExtract(tables, summary)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def write_files(extract: FinanceExtract, out_dir: Path, fmt: str = "parquet") -> dict[str, Path]:
    """Write one file per table (atomically: temp file then rename) plus ``generation_summary.json``."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in ("parquet", "csv"):
        raise ValueError(f"format must be parquet or csv, got {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in TABLE_NAMES:
        path = out_dir / f"{name}.{fmt}"
        tmp = path.with_name(path.name + ".tmp")
        if fmt == "parquet":
            pq.write_table(extract.tables[name], tmp, compression="zstd")
        else:
            pacsv.write_csv(extract.tables[name], tmp)
        tmp.replace(path)
        paths[name] = path
    (out_dir / "generation_summary.json").write_text(json.dumps(extract.summary, indent=2, sort_keys=True))
    return paths


def write_database(extract: FinanceExtract, url: str, schema: str | None = None) -> dict[str, int]:
    """(Re)create the four tables at a SQLAlchemy URL (the 'ledger system' of a real deployment)."""
    import sqlalchemy as sa

    types = {pa.string(): sa.String(), SCHEMAS["ledger_lines"].field("amount_gbp").type: sa.Numeric(16, 2)}
    types[SCHEMAS["allocations"].field("base_growth_pct").type] = sa.Numeric(7, 3)
    engine = sa.create_engine(url)
    md = sa.MetaData(schema=schema)
    counts = {}
    with engine.begin() as conn:
        if schema and engine.dialect.name == "postgresql":
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        for name in TABLE_NAMES:
            tbl = extract.tables[name]
            table = sa.Table(
                name, md, *[sa.Column(f.name, types[f.type], nullable=f.nullable) for f in tbl.schema]
            )
            table.drop(conn, checkfirst=True)
            table.create(conn)
            records = tbl.to_pylist()
            if records:
                conn.execute(table.insert(), records)
            counts[name] = len(records)
    engine.dispose()
    return counts


def generate(
    target: str | Path, *, end_period: str, scale: float = 1.0, seed: int = 42, fmt: str = "parquet"
) -> dict:
    """Generate and write the extract to a directory or a SQLAlchemy URL; returns the summary."""
    extract = generate_finance(end_period=end_period, scale=scale, seed=seed)
    target_text = str(target)
    if "://" in target_text:
        extract.summary["written"] = write_database(extract, target_text)
    else:
        write_files(extract, Path(target_text), fmt)
    from mhsds_pipeline.config import redact_url

    shown = redact_url(target_text) if "://" in target_text else target_text
    log.info("synthetic finance extract for %s written to %s", end_period, shown)
    return extract.summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Generate the synthetic finance (ledger) extract.")
    p.add_argument("--end-period", required=True, help="last ledger month YYYY-MM")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", required=True, help="directory (files) or SQLAlchemy URL (tables)")
    p.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    ns = p.parse_args(argv)
    summary = generate(ns.out, end_period=ns.end_period, scale=ns.scale, seed=ns.seed, fmt=ns.format)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
