"""The system view's published month: files, disclosure control, manifest, atomic promotion.

Layout (``out`` is the system output directory; the promotion is the publisher's own,
:func:`mhsds_pipeline.publish.promote`, so the month is a symlink switched atomically)::

    out/<YYYY-MM>                          -> out/.versions/<YYYY-MM>/<stamp>__<run>/
      manifest.json                        providers, ICBs, every file with rows and sha256
      dq_results_by_provider.parquet       the rules' results per provider (record counts)
      dqmi_by_provider.parquet             DQMI per item per provider, counts disclosure-controlled
      dqmi/<ODS>/dqmi_report.html          each provider's DQMI report (disclosure-controlled)
      ltp_by_provider.parquet              LTP measures per provider, disclosure-controlled
      ltp_by_icb.parquet                   LTP measures per ICB, disclosure-controlled
      sdcs/<ODS>/*.csv                     each provider's SDCS-shaped summary reports

Everything is written to ``out/.staging/<YYYY-MM>/<run>/`` first; a failure before the switch
removes the staging folder and leaves the last good month untouched. No file holds a timestamp
or a run id, so re-running a period with the same packages and code gives the same bytes.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from mhsds_pipeline.period import ReportingPeriod

if TYPE_CHECKING:
    from mhsds_pipeline.system.handover import ProviderOutcome

log = logging.getLogger(__name__)

REGISTRY_COLUMNS = ("org_id_provider", "provider_name", "icb_code", "icb_name", "region_code", "region_name")
UNKNOWN_ICB = "UNKNOWN"
DQ_FILE = "dq_results_by_provider.parquet"
DQMI_FILE = "dqmi_by_provider.parquet"
LTP_PROVIDER_FILE = "ltp_by_provider.parquet"
LTP_ICB_FILE = "ltp_by_icb.parquet"


def read_registry(path: Path) -> dict[str, dict[str, str]]:
    """``providers.csv``: ODS code -> its row (provider_name, icb_code, icb_name, region ...)."""
    if not path.exists():
        raise FileNotFoundError(
            f"No provider registry {path}: the ICB of each provider is read from it "
            f"(columns {', '.join(REGISTRY_COLUMNS)})"
        )
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("org_id_provider", "icb_code") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
        registry: dict[str, dict[str, str]] = {}
        for line, row in enumerate(reader, start=2):
            org = (row.get("org_id_provider") or "").strip()
            if not org:
                raise ValueError(f"{path}: line {line}: empty org_id_provider")
            if org in registry:
                raise ValueError(f"{path}: line {line}: provider {org} listed twice")
            registry[org] = {k: (v or "").strip() for k, v in row.items() if k}
    return registry


def _write_parquet(table: pa.Table, path: Path) -> int:
    pq.write_table(table, path, compression="zstd")
    return table.num_rows


def _icb_of(registry: dict[str, dict[str, str]], org: str) -> dict[str, str]:
    row = registry.get(org)
    if row is None or not row.get("icb_code"):
        log.warning("provider %s has no ICB in the registry: its figures go to ICB %s", org, UNKNOWN_ICB)
        return {"icb_code": UNKNOWN_ICB, "icb_name": "", "region_code": "", "provider_name": ""}
    return row


def _concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables([p.cast(schema) for p in parts]) if parts else schema.empty_table()


def build_tables(
    rp: ReportingPeriod,
    outcomes: list[ProviderOutcome],
    registry: dict[str, dict[str, str]],
    dirs: dict[str, Path],
) -> dict[str, pa.Table]:
    """The period's published tables from the providers' hand-over files."""
    from mhsds_pipeline.quality.dqmi import DQMI_PARQUET_SCHEMA
    from mhsds_pipeline.system import measures
    from mhsds_pipeline.system.handover import DQ_PART
    from mhsds_pipeline.system.validate import BY_PROVIDER_SCHEMA

    org_field = pa.field("org_id_provider", pa.string(), nullable=False)
    dq_parts, dqmi_parts, ltp_rows = [], [], []
    by_icb: dict[str, list[ProviderOutcome]] = {}
    for o in outcomes:
        org = o.org_id_provider
        dq_parts.append(pq.read_table(dirs[org] / DQ_PART))
        dqmi = pq.read_table(dirs[org] / "dqmi" / "dqmi.parquet").replace_schema_metadata(None)
        dqmi_parts.append(dqmi.add_column(0, org_field, pa.array([org] * dqmi.num_rows, pa.string())))
        icb = _icb_of(registry, org)["icb_code"]
        if o.submission_accepted:  # a file SDCS would reject is not in the national data
            by_icb.setdefault(icb, []).append(o)
        for row in measures.publishable_rows(rp, o.ltp_exact, months_available=1):
            ltp_rows.append(
                {"org_id_provider": org, "icb_code": icb, "submission_accepted": o.submission_accepted, **row}
            )
    icb_rows = []
    for icb, members in sorted(by_icb.items()):
        first = _icb_of(registry, members[0].org_id_provider)
        values = measures.icb_values([m.ltp_exact for m in members])
        for row in measures.publishable_rows(rp, values, months_available=1):
            icb_rows.append(
                {
                    "icb_code": icb,
                    "icb_name": first.get("icb_name") or None,
                    "region_code": first.get("region_code") or None,
                    "providers": len(members),
                    **row,
                    "attribution": measures.ATTRIBUTION,
                }
            )
    dqmi_schema = pa.schema([org_field, *DQMI_PARQUET_SCHEMA])
    return {
        DQ_FILE: _concat(dq_parts, BY_PROVIDER_SCHEMA),
        DQMI_FILE: _concat(dqmi_parts, dqmi_schema),
        LTP_PROVIDER_FILE: pa.Table.from_pylist(ltp_rows, schema=measures.PROVIDER_SCHEMA),
        LTP_ICB_FILE: pa.Table.from_pylist(icb_rows, schema=measures.ICB_SCHEMA),
    }


def _csv_rows(path: Path) -> int | None:
    """Data rows of a CSV report (lines after the header; the reports never break a line inside a
    value); None for other files."""
    if path.suffix != ".csv":
        return None
    with open(path, "rb") as fh:
        return max(0, sum(1 for line in fh if line.strip()) - 1)


def _copy_reports(stage: Path, outcomes: list[ProviderOutcome], dirs: dict[str, Path]) -> list[Path]:
    copied = []
    for o in outcomes:
        org = o.org_id_provider
        for sub, pattern in (("sdcs", "*.csv"), ("dqmi", "*.html")):
            target = stage / sub / org
            target.mkdir(parents=True, exist_ok=True)
            for f in sorted((dirs[org] / sub).glob(pattern)):
                shutil.copyfile(f, target / f.name)
                copied.append(target / f.name)
    return copied


def _manifest(
    rp: ReportingPeriod,
    outcomes: list[ProviderOutcome],
    registry: dict[str, dict[str, str]],
    files: dict[str, int | None],
    stage: Path,
) -> dict:
    from mhsds_pipeline.checksums import sha256_file
    from mhsds_pipeline.system import measures

    providers = []
    for o in outcomes:
        reg = _icb_of(registry, o.org_id_provider)
        providers.append(
            {
                "org_id_provider": o.org_id_provider,
                "provider_name": reg.get("provider_name") or None,
                "icb_code": reg["icb_code"],
                "rows": sum(o.rows.values()),
                "rows_rejected": o.rows_rejected,
                "rows_unreadable": o.rows_unreadable,
                "rules_failed": o.rules_failed,
                "file_rejected": o.file_rejected,
                "dqmi_dataset_score": o.dqmi_dataset_score,
                "dqmi_score_before_rejections": o.dqmi_score_before_rejections,
            }
        )
    return {
        "period": str(rp),
        "uniq_month_id": rp.uniq_month_id,
        "providers": providers,
        "icbs": sorted({p["icb_code"] for p in providers}),
        "icb_attribution": measures.ATTRIBUTION,
        "disclosure_control": "DQMI counts and LTP measures: under 5 suppressed (null), the rest rounded "
        "to the nearest 5; a mean suppressed on its numerator. dq_results are record counts of the "
        "submitted files (data-quality use), as in the trust's own dq_results.",
        "files": {
            name: {"rows": rows, "sha256": sha256_file(stage / name)} for name, rows in sorted(files.items())
        },
    }


def publish_system_month(
    rp: ReportingPeriod,
    outcomes: list[ProviderOutcome],
    registry: dict[str, dict[str, str]],
    dirs: dict[str, Path],
    out_dir: Path,
    run_id: str,
) -> dict:
    """Stage every file of the period, then promote atomically; returns a small summary."""
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.publish import discard, promote, staging_dir

    settings = replace(load_settings(), output_dir=Path(out_dir))
    stage = staging_dir(settings, rp, run_id)
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    try:
        files: dict[str, int | None] = {}
        for name, table in build_tables(rp, outcomes, registry, dirs).items():
            files[name] = _write_parquet(table, stage / name)
        for path in _copy_reports(stage, outcomes, dirs):
            files[path.relative_to(stage).as_posix()] = _csv_rows(path)
        manifest = _manifest(rp, outcomes, registry, files, stage)
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        version = promote(settings, rp, stage)
    except BaseException:
        discard(stage)
        raise
    discard(stage)  # moved into .versions: removes the period's now empty staging folder
    log.info(
        "System %s published: %d providers, %d ICBs -> %s",
        rp,
        len(outcomes),
        len(manifest["icbs"]),
        version.name,
    )
    return {
        "period": str(rp),
        "providers": len(outcomes),
        "icbs": len(manifest["icbs"]),
        "files": len(files),
        "version": version.name,
    }
