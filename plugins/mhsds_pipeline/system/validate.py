"""Run the quality gate's rules on several providers' packages, one schema per provider.

Each package is loaded (:func:`.sources.load_package`) into ``provider_<ods>`` and the rule
engine (:func:`mhsds_pipeline.quality.engine.run_rules`) runs unchanged on a context pointed at
that schema, that provider and the package's own period. Providers never share a table, so an
NHS number seen by two providers stays two patients of two providers: nothing is merged.

The results are dq_results rows (:data:`mhsds_pipeline.quality.results.DQ_RESULTS_SCHEMA`) with an
``org_id_provider`` column in front, plus one ``LOCAL_FILE_UNPARSEABLE_ROWS`` row per table with
rows quarantined while reading. The rule engine's ``dq`` views are rebuilt by every run, so after
:func:`validate_packages` they show the last provider only; the counts are collected per provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from mhsds_pipeline.quality.engine import RulesOutcome, run_rules
from mhsds_pipeline.quality.results import DQ_RESULTS_SCHEMA, CheckResult, to_table
from mhsds_pipeline.quality.rules import SqlContext, load_catalogue
from mhsds_pipeline.system.sources import LoadedPackage, PackageError, load_package, package_header

RESULTS_FILE = "dq_results_by_provider.parquet"
UNPARSEABLE_CHECK = "LOCAL_FILE_UNPARSEABLE_ROWS"
BY_PROVIDER_SCHEMA = pa.schema([pa.field("org_id_provider", pa.string(), nullable=False), *DQ_RESULTS_SCHEMA])


@dataclass
class ProviderResults:
    run_id: str
    packages: dict[str, LoadedPackage] = field(default_factory=dict)  # org_id_provider -> package
    outcomes: dict[str, RulesOutcome] = field(default_factory=dict)  # org_id_provider -> rules

    def failures(self, org_id_provider: str) -> dict[str, int]:
        """Rule id -> failing rows for one provider."""
        return dict(self.outcomes[org_id_provider].failures)

    def checks(self, org_id_provider: str) -> list[CheckResult]:
        pkg = self.packages[org_id_provider]
        rows = list(self.outcomes[org_id_provider].checks)
        for table, n in sorted(pkg.quarantine_counts().items()):
            rows.append(
                CheckResult(
                    check_id=UNPARSEABLE_CHECK,
                    source="file",
                    severity="record rejected",
                    status="failed",
                    table_name=table,
                    dimension="validity",
                    numerator=n,
                    denominator=n + pkg.rows.get(table, 0),
                    description="Rows of the submitted file that could not be read (wrong number of "
                    "fields, or a cell not of its contract type); see the schema's _quarantine table",
                )
            )
        return rows

    def write(self, output_path: Path) -> Path:
        """``dq_results_by_provider.parquet`` at ``output_path`` (a ``.parquet`` file or a folder)."""
        output_path = Path(output_path)
        if output_path.suffix != ".parquet":
            output_path = output_path / RESULTS_FILE
        output_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.to_table(), output_path)
        return output_path

    def to_table(self) -> pa.Table:
        parts = []
        for org in sorted(self.outcomes):
            pkg = self.packages[org]
            table = to_table(str(pkg.period), self.run_id, self.checks(org))
            parts.append(table.add_column(0, BY_PROVIDER_SCHEMA.field(0), pa.array([org] * table.num_rows)))
        if not parts:
            return BY_PROVIDER_SCHEMA.empty_table()
        return pa.concat_tables(parts).cast(BY_PROVIDER_SCHEMA)


def provider_schema(org_id_provider: str) -> str:
    return "provider_" + re.sub(r"[^a-z0-9_]", "_", org_id_provider.lower())


def validate_package(
    package_dir: Path, engine: sa.Engine, settings, catalogue, schema: str | None = None
) -> tuple[LoadedPackage, RulesOutcome, SqlContext]:
    """Load one provider's package into ``schema`` (default ``provider_<ods>``) of ``engine``'s
    warehouse and run the rules on it; the context returned is the one the rules ran with."""
    from mhsds_pipeline.quality.gate import sql_context

    if schema is None:
        org, _, _ = package_header(Path(package_dir))
        schema = provider_schema(org)
    pkg = load_package(Path(package_dir), engine, schema)
    ctx = replace(
        sql_context(settings, pkg.period),
        schema=schema,
        org_id_provider=pkg.org_id_provider,
        org_id_submit=pkg.org_id_submit,
    )
    return pkg, run_rules(engine, catalogue, ctx), ctx


def duckdb_settings(warehouse_path: Path | None = None):
    """The project's settings with DuckDB SQL, pointed at a DuckDB file (the system view's
    warehouse) when given; without one, what the Spark stand-in transpiles from."""
    from mhsds_pipeline.config import load_settings

    settings = replace(load_settings(), warehouse_target="duckdb")
    return settings if warehouse_path is None else replace(settings, warehouse_path=Path(warehouse_path))


def validate_packages(
    package_dirs: list[Path],
    warehouse_path: Path,
    output_path: Path | None = None,
    run_id: str = "system",
) -> ProviderResults:
    """Load each provider's package into its own schema and run the rules on it."""
    settings = duckdb_settings(warehouse_path)
    catalogue = load_catalogue()
    engine = sa.create_engine(f"duckdb:///{warehouse_path}")
    results = ProviderResults(run_id)
    try:
        for package_dir in package_dirs:
            org, _, _ = package_header(Path(package_dir))
            if org in results.packages:
                raise PackageError(
                    f"{package_dir}: provider {org} already loaded from "
                    f"{results.packages[org].package_dir}; give one package per provider"
                )
            pkg, outcome, _ = validate_package(Path(package_dir), engine, settings, catalogue)
            results.packages[pkg.org_id_provider] = pkg
            results.outcomes[pkg.org_id_provider] = outcome
    finally:
        engine.dispose()
    if output_path is not None:
        results.write(output_path)
    return results
