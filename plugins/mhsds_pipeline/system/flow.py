"""The system view for one month: every provider's package validated, measured and published.

Inbox layout (what an ICB or NHS England receives)::

    <inbox>/providers.csv                      the provider registry (ODS code -> ICB, region)
    <inbox>/<YYYY-MM>/<ODS>/MHS000Header.csv   one IDB CSV package per provider and month

Two steps, so Airflow can map the first over providers (``dags/mhsds_system.py``):

* :func:`load_and_validate_provider`: one package into **its own DuckDB file**
  (``<work>/<YYYY-MM>/<ODS>/warehouse.duckdb``), the rules (``dq_results``), DQMI on the records
  SDCS would accept (and on every row, beside it), the SDCS-shaped reports, and the LTP measures
  (dbt builds the national derived tables in that file). Everything that needs the provider's
  warehouse happens here; the hand-over is a :class:`ProviderOutcome` plus a few small files in
  ``<work>/<YYYY-MM>/<ODS>/``, exact counts that are never published as they are.
* :func:`combine`: reads the outcomes, applies disclosure control, aggregates per ICB with the
  registry, stages the outputs and promotes them atomically (:mod:`.outputs`).

Why one DuckDB file per provider: DuckDB lets one process write a file, and mapped tasks run in
parallel worker processes; the rule engine's ``dq`` views and ``dq_submitted`` schema, which DQMI
and the SDCS reports read, are rebuilt by every run, so in a shared file they would show only
the last provider. A file per provider needs no lock or pool, lets the providers run at once,
and a re-run of one provider replaces only its own file. The combine step reads the providers'
small result files and opens no warehouse.

:func:`run_system_month` runs both steps in one process (no Airflow needed).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.system.handover import DQ_PART, ProviderOutcome, period_work_dir, provider_work_dir

log = logging.getLogger(__name__)

REGISTRY_FILE = "providers.csv"
#: each provider's DuckDB file, in its own work folder
WAREHOUSE_FILE = "warehouse.duckdb"


def system_dirs() -> tuple[Path, Path, Path]:
    """(inbox, output, work) of the deployed system view, from the settings model:
    ``MHSDS_SYSTEM_INBOX`` (default ``<data>/system/inbox``), ``MHSDS_SYSTEM_OUTPUT``
    (``<output>/system``) and ``MHSDS_SYSTEM_WORK`` (``<data>/system/work``: the per-provider
    DuckDB files and hand-over files)."""
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.settings import read_settings

    settings, env = load_settings(), read_settings()
    return (
        Path(env.system_inbox or settings.data_dir / "system" / "inbox"),
        Path(env.system_output or settings.output_dir / "system"),
        Path(env.system_work or settings.data_dir / "system" / "work"),
    )


def list_packages(inbox_dir: Path, period: str) -> list[Path]:
    """The period's provider packages in the inbox (every folder under ``<inbox>/<YYYY-MM>/``),
    sorted by folder name. A folder that is no package is refused when it is loaded, not skipped."""
    month = Path(inbox_dir) / str(ReportingPeriod.parse(period))
    if not month.is_dir():
        raise FileNotFoundError(f"System {period}: no inbox folder {month}; nothing to validate")
    from mhsds_pipeline.system.sources import PackageError, package_header

    dirs = sorted(p for p in month.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise FileNotFoundError(f"System {period}: {month} holds no provider package")
    seen: dict[str, Path] = {}
    for d in dirs:  # two packages of one provider would share its DuckDB file: refuse up front
        try:
            org = package_header(d)[0]
        except (PackageError, OSError):
            continue  # refused with the reason by its own load step
        if org in seen:
            raise PackageError(
                f"System {period}: {seen[org]} and {d} are both packages of provider {org}; "
                "give one package per provider"
            )
        seen[org] = d
    return dirs


def load_and_validate_provider(package_dir: Path, period: str, work_dir: Path) -> ProviderOutcome:
    """One provider's package: load, rules, DQMI, SDCS reports and LTP measures, in its own file.

    The package's header must be for ``period`` (a package filed under the wrong month is refused,
    naming both). A re-run replaces the provider's file and work folder (dbt's target and logs
    are in it too, so providers running side by side never share one)."""
    import sqlalchemy as sa

    from mhsds_pipeline.quality.rules import load_catalogue
    from mhsds_pipeline.submission.idb import table_specs
    from mhsds_pipeline.system import measures
    from mhsds_pipeline.system.validate import duckdb_settings, validate_package

    t0 = time.perf_counter()
    rp = ReportingPeriod.parse(period)
    package_dir = Path(package_dir)
    org, out = provider_folder(package_dir, rp, work_dir)
    # One name for every provider's file, in the provider's own folder: dbt then sees the same
    # profile for each provider and reuses one parse (measures.provider_raw_values). The catalog
    # DuckDB names after the file ("warehouse") must differ from the schema ("provider_<ods>").
    warehouse_file = out.resolve() / WAREHOUSE_FILE
    for stale in (warehouse_file, warehouse_file.with_name(warehouse_file.name + ".wal")):
        stale.unlink(missing_ok=True)
    settings = duckdb_settings(warehouse_file)
    catalogue = load_catalogue()
    engine = sa.create_engine(f"duckdb:///{warehouse_file}")
    try:
        pkg, rules, ctx = validate_package(package_dir, engine, settings, catalogue)
        scored = write_provider_results(engine, out, pkg, rules, ctx, catalogue)
        relation_of = {s.idb_table: s.model for s in table_specs(settings.dbt_project_dir)}
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            tables = measures.submitted_tables(lambda q: raw.sql(q).to_arrow_table(), rp, org, relation_of)
    finally:
        engine.dispose()
    ltp = measures.provider_raw_values(
        settings, rp, tables, out / "dbt", parse_cache=period_work_dir(work_dir, str(rp)) / "dbt_parse"
    )
    return provider_outcome(
        rp, package_dir, warehouse_file, work_dir, pkg, rules, scored, ltp, time.perf_counter() - t0
    )


def write_provider_results(warehouse, out: Path, pkg, rules, ctx, catalogue):
    """The provider's result files from its validated package, on either engine (``warehouse``: a
    SQLAlchemy engine or :class:`~mhsds_pipeline.system.spark.SparkWarehouse`): its dq_results
    part, the DQMI as the trust's gate scores it (on the records SDCS would accept, the score over
    every row beside it; written disclosure-controlled, as a copy shared outside the trust) and
    the SDCS-shaped reports. Returns the DQMI."""
    import pyarrow.parquet as pq

    from mhsds_pipeline.quality import dqmi
    from mhsds_pipeline.quality.engine import SUBMITTED_SCHEMA
    from mhsds_pipeline.quality.sdcs import write_sdcs_reports
    from mhsds_pipeline.system.validate import ProviderResults

    org = pkg.org_id_provider
    results = ProviderResults(f"system-{pkg.period}", {org: pkg}, {org: rules})
    pq.write_table(results.to_table(), out / DQ_PART)
    with warehouse.connect() as conn:
        scored = dqmi.compute_submission_dqmi(
            conn, schema=ctx.schema, submitted_schema=SUBMITTED_SCHEMA, period=pkg.period
        )
    dqmi.write_dqmi(scored, out / "dqmi", disclosure_controlled=True)
    write_sdcs_reports(warehouse, catalogue, ctx, rules, out / "sdcs")
    return scored


def provider_folder(package_dir: Path, rp: ReportingPeriod, work_dir: Path) -> tuple[str, Path]:
    """The package's provider and its work folder, emptied. The package's header must be for
    ``rp``: a package filed under the wrong month is refused, naming both."""
    from mhsds_pipeline.system.sources import PackageError, package_header

    org, _, header_period = package_header(package_dir)
    if header_period != rp:
        raise PackageError(
            f"{package_dir}: the package's MHS000Header is for {header_period}, but it was filed under "
            f"{rp}; move it to the inbox folder of its own month"
        )
    out = provider_work_dir(work_dir, str(rp), org)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    return org, out


def provider_outcome(
    rp: ReportingPeriod,
    package_dir: Path,
    warehouse: str,
    work_dir: Path,
    pkg,
    rules,
    scored,
    ltp,
    seconds: float,
) -> ProviderOutcome:
    """The provider step's hand-over (whichever engine ran it), written to its work folder."""
    from mhsds_pipeline.quality.results import failing

    outcome = ProviderOutcome(
        org_id_provider=pkg.org_id_provider,
        period=str(rp),
        package_dir=str(package_dir),
        warehouse_file=str(warehouse),
        rows=dict(sorted(pkg.rows.items())),
        rows_rejected=sum(rules.quarantine_counts().values()),
        rows_unreadable=len(pkg.quarantined),
        rules_failed=sum(1 for n in rules.failures.values() if n),
        dqmi_dataset_score=scored.dataset_score,
        dqmi_score_before_rejections=scored.score_before_rejections,
        ltp_exact={k: None if v is None else float(v) for k, v in ltp.items()},
        file_rejected=sorted({c.check_id for c in failing(rules.checks)}),
        seconds=round(seconds, 3),
    )
    outcome.write(work_dir)
    log.info(
        "System %s provider %s: %d rows, %d rejected, %d unreadable, %d rules failed, file rejected by %s, "
        "DQMI %s (%.1f s)",
        rp,
        outcome.org_id_provider,
        sum(outcome.rows.values()),
        outcome.rows_rejected,
        outcome.rows_unreadable,
        outcome.rules_failed,
        ", ".join(outcome.file_rejected) or "no rule",
        outcome.dqmi_dataset_score,
        outcome.seconds,
    )
    return outcome


def combine(
    inbox_dir: Path, period: str, out_dir: Path, work_dir: Path, providers: list[str], run_id: str = "manual"
) -> dict:
    """Publish the period from the providers' outcomes: disclosure control, ICB aggregation,
    staged and promoted atomically (:func:`.outputs.publish_system_month`)."""
    from mhsds_pipeline.system.outputs import publish_system_month, read_registry

    rp = ReportingPeriod.parse(period)
    if len(set(providers)) != len(providers):
        raise ValueError(f"System {rp}: a provider appears twice in {sorted(providers)}")
    outcomes = [ProviderOutcome.read(work_dir, str(rp), org) for org in sorted(providers)]
    registry = read_registry(Path(inbox_dir) / REGISTRY_FILE)
    return publish_system_month(
        rp,
        outcomes,
        registry,
        {o.org_id_provider: provider_work_dir(work_dir, str(rp), o.org_id_provider) for o in outcomes},
        Path(out_dir),
        run_id,
    )


def run_system_month(
    inbox_dir: Path, period: str, out_dir: Path, warehouse_path: Path, run_id: str = "manual"
) -> dict:
    """The whole month in one process: each provider's package in turn, then :func:`combine`.

    ``warehouse_path`` is the work directory that holds the per-provider DuckDB files and the
    hand-over files (``<warehouse_path>/<YYYY-MM>/``). A refused package stops the run before
    anything is published: the period's last good outputs stay as they were."""
    rp = str(ReportingPeriod.parse(period))
    orgs: list[str] = []
    for package_dir in list_packages(Path(inbox_dir), rp):
        outcome = load_and_validate_provider(package_dir, rp, Path(warehouse_path))
        if outcome.org_id_provider in orgs:
            raise ValueError(
                f"System {rp}: two packages in the inbox for provider {outcome.org_id_provider} "
                f"(the second is {package_dir}); give one package per provider"
            )
        orgs.append(outcome.org_id_provider)
    return combine(Path(inbox_dir), rp, Path(out_dir), Path(warehouse_path), orgs, run_id)
