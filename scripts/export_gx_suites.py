#!/usr/bin/env python
"""Render the GX ``marts__*`` suites from the rules catalogue into expectations/suites/.

The pipeline builds the suites from expectations/rules/mhsds_v6_rules.yml at run time, for the
run's reporting period; this writes the same suites, rendered for the example period 2026-10,
so reviewers can read and diff them. tests/unit/test_rules_catalogue.py fails when the
committed files and the catalogue drift apart: re-run this script and commit.
"""

from __future__ import annotations

from dataclasses import replace

from mhsds_pipeline.config import load_settings
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.gx_suites import EXPORT_PERIOD, export_suites
from mhsds_pipeline.quality.rules import load_catalogue

if __name__ == "__main__":
    settings = replace(load_settings(), org_id_provider="R1A", warehouse_target="duckdb")
    for path in export_suites(load_catalogue(), sql_context(settings, ReportingPeriod.parse(EXPORT_PERIOD))):
        print(path)
