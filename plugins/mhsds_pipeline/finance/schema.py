"""The finance extract: four tables, one Arrow schema each (the single definition).

The ledger system (or the synthetic generator) provides, per financial year:

* ``cost_centres``  - ledger master data: cost centre -> service line and care team (the
  PLICS-style keys that link money to MHSDS activity: cost centre, service line, team);
* ``ledger_lines``  - monthly postings by cost centre, subjective and funding source;
* ``outturn``       - the audited year-end outturn by cost centre and funding source (the MHIS
  baseline of the following year);
* ``allocations``   - the ICB programme allocation and its base growth (pre-convergence), with
  the NHS England-supplied MHIS target spend where one has been issued.

The same schemas are used to write the files, to read them back (CSV carries no types) and to
create the ``raw_finance`` tables in the warehouse.
"""

from __future__ import annotations

import pyarrow as pa

MONEY = pa.decimal128(16, 2)
PCT = pa.decimal128(7, 3)

SCHEMAS: dict[str, pa.Schema] = {
    "cost_centres": pa.schema(
        [
            pa.field("cost_centre", pa.string(), nullable=False),
            pa.field("cost_centre_name", pa.string()),
            pa.field("service_line", pa.string()),
            pa.field("team_local_id", pa.string()),  # null for cost centres without an EPR team
        ]
    ),
    "ledger_lines": pa.schema(
        [
            pa.field("line_id", pa.string(), nullable=False),
            pa.field("financial_year", pa.string()),  # '2026/27'
            pa.field("period", pa.string()),  # 'YYYY-MM' (calendar month of the posting)
            pa.field("cost_centre", pa.string()),
            pa.field("service_line", pa.string()),
            pa.field("subjective_code", pa.string()),
            pa.field("subjective_name", pa.string()),
            pa.field("funding_source", pa.string()),
            pa.field("amount_gbp", MONEY),
        ]
    ),
    "outturn": pa.schema(
        [
            pa.field("financial_year", pa.string(), nullable=False),
            pa.field("cost_centre", pa.string()),
            pa.field("funding_source", pa.string()),
            pa.field("outturn_gbp", MONEY),
            pa.field("status", pa.string()),  # audited | draft
        ]
    ),
    "allocations": pa.schema(
        [
            pa.field("financial_year", pa.string(), nullable=False),
            pa.field("programme_allocation_gbp", MONEY),
            pa.field("base_growth_pct", PCT),  # programme allocation base growth, pre-convergence
            pa.field("convergence_adjustment_pct", PCT),
            pa.field("nhse_target_gbp", MONEY),  # the NHSE-supplied MHIS target, when issued
        ]
    ),
}

TABLE_NAMES: tuple[str, ...] = tuple(SCHEMAS)

#: SQL column types for the warehouse (DuckDB and PostgreSQL accept both spellings).
SQL_TYPES = {
    pa.string(): "varchar",
    MONEY: "numeric(16,2)",
    PCT: "numeric(7,3)",
}


def financial_year(period: str) -> str:
    """'2026-10' -> '2026/27' (the NHS financial year runs April to March)."""
    year, month = (int(x) for x in period.split("-"))
    start = year if month >= 4 else year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def fy_start_year(fy: str) -> int:
    return int(fy.split("/")[0])


def fy_label(start_year: int) -> str:
    return f"{start_year}/{(start_year + 1) % 100:02d}"


def fy_months(fy: str) -> list[str]:
    """The twelve 'YYYY-MM' months of a financial year, April first."""
    y = fy_start_year(fy)
    return [f"{y + (m < 4):04d}-{m:02d}" for m in (4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3)]
