"""Data Quality Maturity Index (DQMI) for one MHSDS reporting period, counted in the warehouse.

NHS England scores every provider's MHSDS submission each month; this package computes the same
kind of score locally before submission, so a weak data item is found while it can still be
fixed. Method (digest: /work/shared/reference/dqmi_snomed.md, Part A):

* **VODIM** (A2.2, A2.3): every record of an item is Valid, Other (valid but non-specific, e.g.
  ethnic category Z), Default (a "not known" code, e.g. X, 99, ZZ99 postcodes), Invalid (present
  but not an accepted value) or Missing (null or blank). One SQL query per table counts the five
  categories of all that table's items; nothing but counts leaves the warehouse.
* **"(hour)" time items** (A2.1, NHS Digital integrity measures): a time recorded on the hour
  (XX:00) is Invalid, 00:00 (midnight) a Default at a 0% threshold, any other time Valid, a blank
  Missing. How the DQMI scores these is not published; this scoring is derived (docs/dqmi.md).
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

Modules, each importing only those above it: :mod:`.items` (the seed and code lists),
:mod:`.sql` (the counting queries), :mod:`.scoring` (arithmetic, results, ``dq_results`` rows),
:mod:`.compute` (:func:`compute_dqmi`), :mod:`.report` (``dqmi.parquet``, ``dqmi_report.html``).
This ``__init__`` re-exports their public names, so ``from mhsds_pipeline.quality import dqmi``
then ``dqmi.compute_dqmi(...)`` works as it did when the DQMI was one module.
"""

from __future__ import annotations

from mhsds_pipeline.quality.dqmi.compute import compute_dqmi, compute_submission_dqmi
from mhsds_pipeline.quality.dqmi.items import (
    DqmiConfig,
    DqmiItem,
    load_dqmi_config,
)
from mhsds_pipeline.quality.dqmi.report import (
    DQMI_PARQUET_SCHEMA,
    render_dqmi_html,
    write_dqmi,
)
from mhsds_pipeline.quality.dqmi.scoring import (
    DqmiResult,
    ItemResult,
    SnomedCoverage,
    VodimCounts,
    coverage_ratio,
    dataset_score,
    defaults_allowed,
    defaults_in_excess,
    item_score,
    item_score_from_vodim,
    snomed_ct_coverage_pct,
    to_check_results,
)

__all__ = [
    "DQMI_PARQUET_SCHEMA",
    "DqmiConfig",
    "DqmiItem",
    "DqmiResult",
    "ItemResult",
    "SnomedCoverage",
    "VodimCounts",
    "compute_dqmi",
    "compute_submission_dqmi",
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
