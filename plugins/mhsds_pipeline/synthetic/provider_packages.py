"""Synthetic submission packages for many providers (``mhsds generate --providers N``, issue #15).

For each provider of the registry (:mod:`.providers`) this builds that provider's own synthetic
EPR (its seed, ODS code, local identifiers, ICB's practices and commissioners, a window of the
national NHS number pool: ``synthetic.profile``) and runs the real trust pipeline on it
(``pipeline.run_all``: extract, load_raw, validate_raw, dbt build, quality gate, publish,
package) in a data root of its own, then copies the IDB package it made. What it writes::

    <out>/providers.csv                       the registry (providers.COLUMNS)
    <out>/<YYYY-MM>/<ODS>/MHS000Header.csv ... each provider's package (IDB CSVs + manifest.json)
    <out>/<YYYY-MM>/<ODS>.ground_truth.csv    the defects the generator planted (its ground_truth.csv)
    <out>/<YYYY-MM>/generation_summary.json   per provider: scale, rows per table, planted defects
                                              per rule, rows the trust's gate quarantined, seconds
    <out>/reference/dbt_project/              the dbt project with the providers' organisations
                                              added to its ODS seed (see below)
    <out>/.work/<YYYY-MM>/<ODS>/              per-provider scratch (EPR, warehouse, outputs):
                                              deleted once the package is copied unless ``keep_work``

The packages are what each trust would submit: the trust's quality gate has run, so rows it
rejected are not in them; warnings and whatever the gate does not reject are.

**ODS seed.** The v6 "live organisation" rules (MHS00035 OrgIDProvider, MHS00206 GMPReg,
MHS10110 OrgIDComm, ...) read ``seeds/reference/ref_ods_organisations.csv`` of the settings' dbt
project. The generated providers' codes are not in the repository's seed, so each run copies the
dbt project to ``<out>/reference/dbt_project`` with those organisations appended and points every
provider's pipeline at it; validate the packages with ``MHSDS_DBT_PROJECT_DIR`` set to it too.

**Settings.** Each provider's pipeline runs under its own ``MHSDS_*`` variables (data, output,
warehouse, source, dbt project, provider and allowed ODS codes) read by ``load_settings()``,
rather than a ``dataclasses.replace`` of one Settings: dbt's profile and the audit key read the
environment themselves. Providers run one at a time per process, in 1 or 2 worker processes.

**Seeds.** Provider k (1-based) is generated with seed ``seed + 1000 * (k - 1)``; the NHS number
pool and the registry's sizes use ``seed``. Same arguments => the same registry, EPRs and ground
truth, hence the same package tables.

**Speed** (2-core machine shared with other jobs): 4 providers at total scale 2 (333,850 package
rows, ~167,000 rows per unit of scale) took 5 min 33 s with 2 workers at load ~8 (8 min 45 s at
load ~13). Each provider costs ~2 min fixed (dbt parse and docs, GX suites, reports) plus ~1.5 min
per unit of scale; :func:`national_estimate` turns a run's figures into the time for a national
month (60 providers, ~11M rows: ~1.8 h with 2 workers at that load).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mhsds_pipeline.synthetic import providers as registry_mod

SUMMARY_FILE = "generation_summary.json"
REGISTRY_FILE = "providers.csv"
GROUND_TRUTH_SUFFIX = ".ground_truth.csv"
SEED_STRIDE = 1000
MAX_WORKERS = 2
#: The environment one provider's pipeline runs under (everything else is left as it is).
_ENV_KEYS = (
    "MHSDS_DATA_DIR",
    "MHSDS_OUTPUT_DIR",
    "MHSDS_WAREHOUSE_PATH",
    "MHSDS_SOURCE_URL",
    "MHSDS_DBT_PROJECT_DIR",
    "MHSDS_ORG_ID_PROVIDER",
    "MHSDS_ORG_ID_SUBMIT",
    "MHSDS_ALLOWED_ORG_IDS",
    "MHSDS_WAREHOUSE_TARGET",
    "MHSDS_AUDIT_KEY_FILE",
)


@dataclass
class ProviderRun:
    org_id_provider: str
    scale: float
    seed: int
    package_dir: str
    rows: int  # rows in the package (all tables)
    table_rows: dict[str, int]
    epr_rows: int  # rows the generator wrote into the EPR
    planted: dict[str, int]  # ground_truth.csv rows of the period per rule
    quarantined: int  # rows the trust's quality gate rejected
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def _ods_overlay(
    out_dir: Path, providers: list[registry_mod.Provider], pool_seed: int, repo_project: Path
) -> Path:
    """A copy of the dbt project whose ODS seed also lists the generated providers' organisations."""
    target = out_dir / "reference" / "dbt_project"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(repo_project, target, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    seed = target / "seeds" / "reference" / "ref_ods_organisations.csv"
    with seed.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns, rows = reader.fieldnames, list(reader)
    known = {r["code"] for r in rows}
    src = "synthetic providers (plugins/mhsds_pipeline/synthetic/providers.py)"
    for p in providers:
        prof = registry_mod.profile(p, providers, pool_seed)
        kinds = [(prof.org_id, f"{p.provider_name}", "NHS trust")]
        kinds += [(c, f"Sub-ICB location {c}", "sub-ICB location") for c in
                  (prof.commissioner_home, *prof.commissioners_out_of_area)]  # fmt: skip
        kinds += [(c, f"Synthetic GP practice {c}", "GP practice") for pool in prof.practices for c in pool]
        for code, name, kind in kinds:
            if code not in known:
                known.add(code)
                rows.append({"code": code, "name": name, "org_type": kind, "open_date": "2000-01-01",
                             "close_date": "", "source": src})  # fmt: skip
    rows.sort(key=lambda r: r["code"])
    with seed.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return target


@contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    try:
        for k in _ENV_KEYS:
            os.environ.pop(k, None)
        os.environ.update(values)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _count_rows(package_dir: Path) -> dict[str, int]:
    out = {}
    for f in sorted(package_dir.glob("*.csv")):
        with f.open("rb") as fh:
            out[f.stem] = max(0, sum(1 for _ in fh) - 1)
    return out


def _drop_stale(period_dir: Path, keep: set[str]) -> None:
    """Remove packages an earlier run with more providers left (only synthetic codes): a reader
    of the layout takes every provider directory as a submission."""
    for path in period_dir.iterdir():
        org = path.name.removesuffix(GROUND_TRUTH_SUFFIX)
        if org in keep or not re.fullmatch(r"R1A|Z[0-9][A-Z]", org):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        elif path.name.endswith(GROUND_TRUTH_SUFFIX):
            path.unlink()


def _planted(ground_truth: Path, period: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with ground_truth.open(newline="") as fh:
        for r in csv.DictReader(fh):
            if r["period"] == period:
                out[r["rule"]] = out.get(r["rule"], 0) + 1
    return dict(sorted(out.items()))


def build_provider(job: dict) -> dict:
    """One provider: generate its EPR, run the trust pipeline, copy its package (worker entry)."""
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.pipeline import run_all
    from mhsds_pipeline.synthetic.generator import generate
    from mhsds_pipeline.synthetic.profile import ProviderProfile, applied

    t0 = time.perf_counter()
    period, org = job["period"], job["org_id_provider"]
    work = Path(job["work_dir"])
    if work.exists():
        shutil.rmtree(work)
    epr = work / "epr"
    url = f"sqlite:///{epr / 'epr.sqlite'}"
    prof = ProviderProfile(**job["profile"])
    timings = {}
    with applied(prof):
        gen = generate(url, scale=job["scale"], seed=job["seed"], end_period=period, months=job["months"],
                       out_dir=epr)  # fmt: skip
    timings["generate"] = round(time.perf_counter() - t0, 3)
    env = {
        "MHSDS_DATA_DIR": str(work),
        "MHSDS_OUTPUT_DIR": str(work / "output"),
        "MHSDS_WAREHOUSE_PATH": str(work / "warehouse" / "mhsds.duckdb"),
        "MHSDS_SOURCE_URL": url,
        "MHSDS_DBT_PROJECT_DIR": job["dbt_project_dir"],
        "MHSDS_ORG_ID_PROVIDER": org,
        "MHSDS_ORG_ID_SUBMIT": org,
        "MHSDS_ALLOWED_ORG_IDS": org,
        "MHSDS_WAREHOUSE_TARGET": "duckdb",
    }
    with _environment(env):
        settings = load_settings()
        steps = run_all(period, f"system_generate_{org}", settings)
    for name, step in steps.items():
        seconds = step.get("seconds") if isinstance(step, dict) else None
        if isinstance(seconds, dict):  # the quality gate's breakdown
            seconds = seconds.get("total")
        if isinstance(seconds, (int, float)):
            timings[name] = seconds
    source = settings.output_dir / "submissions" / period
    versions = sorted(p for p in source.iterdir() if p.is_dir() and p.name.startswith("v"))
    if not versions:
        raise RuntimeError(f"{org} {period}: the pipeline wrote no submission package under {source}")
    target = Path(job["package_dir"])
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for f in sorted(versions[-1].iterdir()):
        if f.is_file() and (f.suffix == ".csv" or f.name == "manifest.json"):
            shutil.copyfile(f, target / f.name)
    ground_truth = Path(job["ground_truth"])
    shutil.copyfile(epr / "ground_truth.csv", ground_truth)
    quarantined = sum(int(v) for v in (steps.get("quality") or {}).get("rejected_rows", {}).values())
    table_rows = _count_rows(target)
    if not job["keep_work"]:
        shutil.rmtree(work, ignore_errors=True)
    run = ProviderRun(
        org_id_provider=org,
        scale=job["scale"],
        seed=job["seed"],
        package_dir=str(target),
        rows=sum(table_rows.values()),
        table_rows=table_rows,
        epr_rows=sum(gen.row_counts.values()),
        planted=_planted(ground_truth, period),
        quarantined=quarantined,
        seconds=round(time.perf_counter() - t0, 3),
        timings=timings,
    )
    return run.__dict__


def _print_line(run: dict) -> None:
    print(
        f"  {run['org_id_provider']:<4} scale {run['scale']:>7.4f}  {run['rows']:>10,} rows  {run['seconds']:>7.1f} s",
        flush=True,
    )


def generate_providers(
    out_dir: Path,
    providers: int,
    period: str | None = None,
    total_scale: float = 1.0,
    seed: int = 42,
    months: int = 1,
    workers: int = 1,
    keep_work: bool = False,
    verbose: bool = True,
) -> dict:
    """Build ``providers`` providers' packages for ``period`` under ``out_dir`` (see the module doc)."""
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.pipeline import resolve_period

    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be 1 or {MAX_WORKERS}, got {workers}")
    t0 = time.perf_counter()
    period = resolve_period(period)
    out_dir = Path(out_dir).resolve()
    regs = registry_mod.registry(providers, total_scale, seed)
    registry_mod.write_registry(out_dir / REGISTRY_FILE, regs)
    project = _ods_overlay(out_dir, regs, seed, load_settings().dbt_project_dir)
    period_dir = out_dir / period
    period_dir.mkdir(parents=True, exist_ok=True)
    _drop_stale(period_dir, {p.org_id_provider for p in regs})
    jobs = []
    for p in regs:
        prof = registry_mod.profile(p, regs, seed)
        jobs.append({
            "period": period,
            "org_id_provider": p.org_id_provider,
            "scale": p.scale,
            "seed": seed + SEED_STRIDE * (p.number - 1),
            "months": months,
            "profile": {k: getattr(prof, k) for k in prof.__dataclass_fields__},
            "work_dir": str(out_dir / ".work" / period / p.org_id_provider),
            "package_dir": str(period_dir / p.org_id_provider),
            "ground_truth": str(period_dir / f"{p.org_id_provider}{GROUND_TRUTH_SUFFIX}"),
            "dbt_project_dir": str(project),
            "keep_work": keep_work,
        })  # fmt: skip
    if verbose:
        print(
            f"MHSDS {period}: {len(jobs)} synthetic providers, total scale {total_scale}, {workers} worker(s)"
        )
    runs: list[dict] = []
    if workers == 1:
        for job in jobs:
            runs.append(build_provider(job))
            if verbose:
                _print_line(runs[-1])
    else:
        # spawn, not fork: a process that already runs threads (a SparkSession's py4j threads, a
        # pytest session that ran the Spark tests, Airflow) can fork a child holding a lock no
        # thread will release; the workers then wait forever (seen in the full test suite)
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            for run in pool.map(build_provider, jobs):
                runs.append(run)
                if verbose:
                    _print_line(run)
    if not keep_work:
        shutil.rmtree(out_dir / ".work", ignore_errors=True)
    seconds = round(time.perf_counter() - t0, 3)
    total_rows = sum(r["rows"] for r in runs)
    summary = {
        "period": period,
        "providers": len(runs),
        "total_scale": total_scale,
        "seed": seed,
        "months": months,
        "workers": workers,
        "total_rows": total_rows,
        "rows_per_scale": round(total_rows / sum(r["scale"] for r in runs), 1),
        "seconds": seconds,
        "registry": str(out_dir / REGISTRY_FILE),
        "dbt_project_dir": str(project),
        "by_provider": {r["org_id_provider"]: r for r in runs},
    }
    summary["national_estimate"] = national_estimate(summary)
    (period_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if verbose:
        est = summary["national_estimate"]
        print(
            f"  {total_rows:,} rows in {seconds:.1f} s ({summary['rows_per_scale']:,.0f} rows per unit of scale)"
        )
        print(
            f"  a national month ({est['providers']} providers, {est['rows']:,} rows = scale {est['total_scale']}) "
            f"would take about {est['seconds'] / 3600:.1f} h here with {est['workers']} worker(s) "
            f"({est['seconds_fixed_per_provider']:.0f} s per provider + {est['seconds_per_scale']:.0f} s per unit of scale)"
        )
    return summary


def national_estimate(summary: dict, providers: int = 60, rows: int = 11_000_000) -> dict:
    """Time to build a national month (``providers`` providers, ``rows`` rows) at this machine's
    measured speed: each provider costs a fixed part (dbt parse and docs, GX, reports) plus a part
    per unit of scale, fitted (least squares) to this run's providers; providers share the workers."""
    runs = list(summary["by_provider"].values())
    xs = [r["scale"] for r in runs]
    ys = [r["seconds"] for r in runs]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    if slope <= 0:  # one provider, or noise: charge everything to scale
        slope, fixed = mean_y / mean_x, 0.0
    else:
        fixed = max(0.0, mean_y - slope * mean_x)
    scale = rows / summary["rows_per_scale"]
    seconds = (providers * fixed + slope * scale) / summary["workers"]
    return {
        "providers": providers,
        "rows": rows,
        "total_scale": round(scale, 1),
        "seconds_fixed_per_provider": round(fixed, 1),
        "seconds_per_scale": round(slope, 1),
        "workers": summary["workers"],
        "seconds": round(seconds),
    }


__all__ = ["build_provider", "generate_providers", "national_estimate"]
