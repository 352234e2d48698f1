"""Where the finance extract comes from and how the MHIS run is configured (environment).

* ``MHSDS_FINANCE_SOURCE``: a directory of ``<table>.parquet`` or ``<table>.csv`` files (default
  ``<data dir>/finance``) or a SQLAlchemy URL of the ledger database (e.g. PostgreSQL).
* ``MHSDS_FINANCE_SOURCE_SCHEMA``: schema of the tables at that URL (optional).
* ``MHSDS_TRAJECTORY_SCALE``: multiplier on the local LTP trajectories. The trajectories are for
  the real Herefordshire and Worcestershire system; with the synthetic EPR at scale 0.1 they are
  compared at 0.1 of their size. Default: the synthetic EPR's scale when the embedded synthetic
  source is in use, else 1.
* ``MHSDS_MHIS_WINDOW_MONTHS``: months of MHSDS history read for the rolling metrics (default 24;
  the rolling windows are 12 months, the extra history orders earlier contacts for MHS108).

The variables are validated in :mod:`mhsds_pipeline.settings` (a scale that is not a positive
number, or a window outside 1-60 months, is a :class:`~mhsds_pipeline.config.ConfigurationError`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mhsds_pipeline.config import Settings
from mhsds_pipeline.settings import read_settings


@dataclass(frozen=True)
class FinanceSettings:
    source: str = field(repr=False)  # a ledger URL may carry a password
    source_schema: str | None
    trajectory_scale: float
    trajectory_scale_basis: str
    history_months: int
    seed_dir: Path

    @property
    def source_is_url(self) -> bool:
        return "://" in self.source


def epr_scale(settings: Settings) -> float | None:
    """Scale of the built-in synthetic demo EPR (None for any configured source)."""
    summary = settings.epr_dir / "generation_summary.json"
    if settings.is_demo_default_source and summary.exists():
        try:
            return float(json.loads(summary.read_text())["scale"])
        except (ValueError, KeyError, TypeError):
            return None
    return None


def load_finance_settings(settings: Settings) -> FinanceSettings:
    env = read_settings()
    if env.trajectory_scale is not None:
        scale, basis = env.trajectory_scale, "MHSDS_TRAJECTORY_SCALE"
    elif (epr := epr_scale(settings)) is not None:
        scale, basis = epr, f"synthetic EPR scale {epr:g}"
    else:
        scale, basis = 1.0, "real source (no scaling)"
    source = env.finance_source.get_secret_value() if env.finance_source else ""
    return FinanceSettings(
        source=source or str(settings.data_dir / "finance"),
        source_schema=env.finance_source_schema or None,
        trajectory_scale=scale,
        trajectory_scale_basis=basis,
        history_months=env.mhis_window_months,
        seed_dir=settings.dbt_project_dir / "seeds" / "finance",
    )
