"""Run the dbt project (staging -> intermediate -> MHSDS marts, seeds and tests) for a period."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mhsds_pipeline.config import MHSDS_SPEC_VERSION, Settings
from mhsds_pipeline.period import ReportingPeriod

log = logging.getLogger(__name__)


class TransformError(RuntimeError):
    """dbt build failed: a model did not build or a blocking (error-severity) test failed.
    ``failed_rules``: the failed dbt tests' check ids (alerts name them)."""

    def __init__(self, message: str, failed_rules: tuple[str, ...] = ()):
        super().__init__(message)
        self.failed_rules = list(failed_rules)


@dataclass
class NodeResult:
    unique_id: str
    resource_type: str
    status: str
    failures: int | None
    message: str | None
    check_id: str | None  # a structural dbt test's own DBT_* id (meta.check_id), never an MHSDS code
    model: str | None  # the model a test is attached to
    column: str | None  # the column a test is attached to


@dataclass(frozen=True)
class BuildResults:
    """``dbt_results.json``: what ``dbt build`` did for a period, written and read here only."""

    period: str
    success: bool
    seconds: float
    counts: dict[str, int]
    nodes: tuple[NodeResult, ...]

    @staticmethod
    def path(settings: Settings, period: str) -> Path:
        return settings.data_dir / "dbt" / str(period) / "dbt_results.json"

    def write(self, path: Path) -> None:
        doc = {**self.__dict__, "nodes": [n.__dict__ for n in self.nodes]}
        path.write_text(json.dumps(doc, indent=2, sort_keys=True))

    @classmethod
    def read(cls, settings: Settings, period: str) -> BuildResults | None:
        """The period's last build, or None when dbt has not run for it."""
        path = cls.path(settings, period)
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        nodes = tuple(NodeResult(**n) for n in doc.get("nodes", []))
        return cls(doc["period"], bool(doc["success"]), float(doc["seconds"]), dict(doc["counts"]), nodes)


def dataset_created_at(period: ReportingPeriod, source_watermark: str | None) -> str:
    """DateTimeDatSetCreate: must be >= RP end (MHSDS file rule). Taken from the source so that
    re-running a period on the same source gives the same bytes."""
    floor = period.end_exclusive_ts
    stamp = datetime.fromisoformat(source_watermark) if source_watermark else floor
    return max(stamp, floor).strftime("%Y-%m-%d %H:%M:%S")


def dbt_vars(settings: Settings, period: ReportingPeriod, source_watermark: str | None) -> dict[str, str]:
    return {
        "rp_start": period.start.isoformat(),
        "rp_end": period.end.isoformat(),
        "org_id_provider": settings.org_id_provider,
        "org_id_submit": settings.org_id_submit,
        "prim_system_in_use": settings.prim_system_in_use,
        "dataset_created_at": dataset_created_at(period, source_watermark),
        "dataset_version": MHSDS_SPEC_VERSION,
    }


def run_dbt(
    settings: Settings, args: list[str], dbt_vars_: dict[str, str], work_dir: Path
) -> tuple[bool, list[NodeResult]]:
    from dbt.cli.main import dbtRunner

    work_dir.mkdir(parents=True, exist_ok=True)
    os.environ["MHSDS_WAREHOUSE_PATH"] = str(settings.warehouse_path)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    cli = [
        *args,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target",
        settings.warehouse_target,
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
        "--vars",
        json.dumps(dbt_vars_, sort_keys=True),
    ]
    res = dbtRunner().invoke(cli)
    nodes: list[NodeResult] = []
    for r in getattr(res.result, "results", None) or []:
        node = r.node
        meta = (getattr(node, "config", None) and node.config.meta) or {}
        meta = {**(getattr(node, "meta", {}) or {}), **meta}
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                resource_type=str(node.resource_type),
                status=str(r.status),
                failures=getattr(r, "failures", None),
                message=r.message,
                check_id=meta.get("check_id"),
                model=(getattr(node, "attached_node", None) or "").rsplit(".", 1)[-1] or None,
                column=getattr(node, "column_name", None),
            )
        )
    if res.exception is not None:
        raise TransformError(f"dbt could not run: {res.exception}")
    return bool(res.success), nodes


def build(settings: Settings, period: ReportingPeriod, source_watermark: str | None) -> dict:
    """``dbt build`` for the period; raises TransformError naming each failed node."""
    work_dir = settings.data_dir / "dbt" / str(period)
    t0 = time.perf_counter()
    # The v6 code lists (seeds/reference/v6) are read by the quality gate from their CSVs and by
    # no model: the monthly build does not reload and re-test 74 seeds (`dbt seed` loads them
    # into the warehouse for analysts; the test suite builds and tests them).
    args = ["build", "--exclude", "path:seeds/reference/v6"]
    ok, nodes = run_dbt(settings, args, dbt_vars(settings, period, source_watermark), work_dir)
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.status] = counts.get(n.status, 0) + 1
    results = BuildResults(str(period), ok, round(time.perf_counter() - t0, 3), counts, tuple(nodes))
    results.write(work_dir / "dbt_results.json")
    if not ok:
        failed = [f"{n.unique_id} ({n.status}: {n.message})" for n in nodes if n.status in ("error", "fail")]
        raise TransformError(
            f"dbt build failed for reporting period {period}: "
            + "; ".join(failed or ["see dbt logs"])
            + f". Logs: {work_dir / 'logs'}",
            tuple(n.check_id or n.unique_id for n in nodes if n.status in ("error", "fail")),
        )
    warned = [n for n in nodes if n.status == "warn"]
    log.info("dbt build for %s: %s (%d warnings)", period, counts, len(warned))
    docs_site(settings, period, source_watermark)
    return {"period": str(period), "success": ok, "seconds": results.seconds, "counts": counts}


def docs_path(settings: Settings, period: ReportingPeriod | str) -> Path:
    """The run's dbt docs site: one self-contained HTML file (``dbt docs generate --static``)."""
    return settings.data_dir / "dbt" / str(period) / "target" / "static_index.html"


def docs_site(settings: Settings, period: ReportingPeriod, source_watermark: str | None) -> Path | None:
    """dbt's docs site for the models just built (lineage, contracts, tests, column docs with
    their MHSDS data item ids), published beside Data Docs as ``dbt_docs/index.html``.

    ``--static`` embeds the manifest and catalog in one HTML file with no network requests, so
    it opens from a file share like the other reports. The catalog holds table and column
    metadata only (names, types, row counts), never values. A failure here costs the docs, not
    the month: it is logged and the run goes on (about 4 s a month)."""
    work_dir = settings.data_dir / "dbt" / str(period)
    docs_path(settings, period).unlink(missing_ok=True)  # never publish an earlier run's docs
    try:
        ok, _ = run_dbt(
            settings, ["docs", "generate", "--static"], dbt_vars(settings, period, source_watermark), work_dir
        )
    except TransformError as exc:
        log.warning("dbt docs for %s not generated: %s", period, exc)
        return None
    path = docs_path(settings, period)
    if not ok or not path.exists():
        log.warning("dbt docs for %s not generated (see %s)", period, work_dir / "logs")
        return None
    return path
