#!/usr/bin/env python
"""Benchmark the system view (issue #15): many providers' submission packages in one month.

Prints figures; asserts nothing. Each stage runs in its own process, and a sampler adds up the
resident memory of that process and every process it starts (pool workers, Spark's JVM) five
times a second, so "peak RSS" is the whole stage's, not one process's.

Stages:

* ``generate``: ``mhsds generate --providers N`` (kept between runs when the same providers,
  scale, seed and period are already there; pass ``--regenerate`` to rebuild).
* ``system``: every provider's package loaded, validated (the rules catalogue), DQMI, SDCS reports
  and LTP measures (``system.flow.load_and_validate_provider``), ``--workers`` providers at a time
  as Airflow's mapped tasks run them, then ``combine`` (disclosure control, ICB sums, promote).
* ``steps``: the same flow on the first providers whose rows add up to scale 10, 20 and 40 of one
  trust: memory should stay flat as volume grows, because each provider is its own process and file.
* ``rules``: on the largest provider, the rule engine beside its one-pass floor
  (``quality.floor``), and GX pushdown beside the same expectations on pandas.
* ``spark``: the rules on local Spark for the ``--spark-providers`` smallest providers, beside
  the same providers on DuckDB.

    .venv/bin/python scripts/benchmark_system.py                       # 60 providers, ~11M rows
    .venv/bin/python scripts/benchmark_system.py --providers 4 --total-scale 2 --no-steps
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: source rows of one trust-month at scale 1 (scripts/benchmark.py, 2026-12-05): the unit of the steps
TRUST_ROWS_PER_SCALE = 167_746


class PeakRss:
    """Largest sum of RSS over a process and its descendants, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(0.2)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def run_stage(args: list[str], env: dict | None = None) -> dict:
    """Run ``python scripts/benchmark_system.py --child ...`` and return its JSON, seconds and peak RSS."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"benchmark_system_{os.getpid()}_{time.time_ns()}.json"
    cmd = [sys.executable, __file__, *args, "--result", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})})
    sampler = PeakRss(proc.pid)
    rc = proc.wait()
    peak = sampler.stop()
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"stage {args} failed with exit code {rc}")
    result = json.loads(out.read_text())
    out.unlink()
    result.update(wall_seconds=round(seconds, 1), peak_rss_mb=round(peak / 2**20))
    return result


# ---------------------------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------------------------


def _one_provider(job: tuple[str, str, str]) -> dict:
    from mhsds_pipeline.system.flow import load_and_validate_provider

    package_dir, period, work = job
    outcome = load_and_validate_provider(Path(package_dir), period, Path(work))
    return {"org": outcome.org_id_provider, "rows": sum(outcome.rows.values()), "seconds": outcome.seconds}


def child_system(inbox: Path, period: str, out: Path, work: Path, workers: int, only: list[str]) -> dict:
    """The flow as the DAG runs it: providers ``workers`` at a time, each in its own process."""
    from concurrent.futures import ProcessPoolExecutor

    from mhsds_pipeline.system.flow import combine, list_packages
    from mhsds_pipeline.system.sources import package_header

    packages = list_packages(inbox, period)
    if only:
        packages = [p for p in packages if package_header(p)[0] in set(only)]
    jobs = [(str(p), period, str(work)) for p in packages]
    t0 = time.perf_counter()
    # one task per process, as Airflow's LocalExecutor runs mapped task instances
    with ProcessPoolExecutor(max_workers=workers, max_tasks_per_child=1) as pool:
        runs = list(pool.map(_one_provider, jobs))
    providers_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    combine(inbox, period, out, work, [r["org"] for r in runs], run_id="benchmark")
    return {
        "providers": len(runs),
        "rows": sum(r["rows"] for r in runs),
        "providers_seconds": round(providers_seconds, 1),
        "combine_seconds": round(time.perf_counter() - t1, 1),
        "slowest_provider_seconds": max(r["seconds"] for r in runs),
    }


def child_rules(work: Path, period: str, org: str) -> dict:
    """Rule engine vs one-pass floor, and GX pushdown vs pandas, on one provider's DuckDB file."""
    from dataclasses import replace

    import sqlalchemy as sa

    sys.path.insert(0, str(REPO / "scripts"))
    from benchmark import compare_pushdown_with_pandas

    from mhsds_pipeline.period import ReportingPeriod
    from mhsds_pipeline.quality.dqmi import compute_submission_dqmi
    from mhsds_pipeline.quality.engine import SUBMITTED_SCHEMA, run_rules
    from mhsds_pipeline.quality.floor import floor_counts
    from mhsds_pipeline.quality.gate import sql_context
    from mhsds_pipeline.quality.rules import load_catalogue
    from mhsds_pipeline.system.flow import WAREHOUSE_FILE
    from mhsds_pipeline.system.validate import duckdb_settings, provider_schema

    rp = ReportingPeriod.parse(period)
    file = Path(work) / period / org / WAREHOUSE_FILE
    settings = duckdb_settings(file)
    catalogue = load_catalogue()
    ctx = replace(
        sql_context(settings, rp), schema=provider_schema(org), org_id_provider=org, org_id_submit=org
    )
    url = f"duckdb:///{file}"
    engine = sa.create_engine(url)
    try:
        t0 = time.perf_counter()
        outcome = run_rules(engine, catalogue, ctx)
        rules_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()  # the provider step's gate is the rules, then the DQMI
        compute_submission_dqmi(engine, schema=ctx.schema, submitted_schema=SUBMITTED_SCHEMA, period=rp)
        dqmi_seconds = time.perf_counter() - t0
        floor = floor_counts(engine, catalogue, ctx, cascade=True)
        with engine.connect() as conn:
            rows = sum(
                conn.execute(sa.text(f'SELECT count(*) FROM "{ctx.schema}"."{catalogue.model(t)}"')).scalar()
                for t in catalogue.cascade_order
            )
    finally:
        engine.dispose()
    gx = compare_pushdown_with_pandas(url, catalogue, ctx)
    return {
        "org": org,
        "rows": rows,
        "rules_seconds": round(rules_seconds, 2),
        "floor_seconds": round(floor.seconds, 2),
        "rules_over_floor": round(rules_seconds / floor.seconds, 1),
        "dqmi_seconds": round(dqmi_seconds, 2),
        "gate_over_floor": round((rules_seconds + dqmi_seconds) / floor.seconds, 1),
        "same_counts": {k: v for k, v in outcome.failures.items() if k in floor.counts}
        == {k: v for k, v in floor.counts.items() if k in outcome.failures},
        "gx": gx,
    }


def child_gx_national(work: Path, period: str, orgs: list[str], national: Path) -> dict:
    """GX pushdown vs pandas on the national tables: every provider's rows of each IDB table in
    one table (the national data set as NHS England holds it, one table per IDB table with every
    provider's rows), built from the providers' DuckDB files the national run left."""
    from dataclasses import replace

    import duckdb

    sys.path.insert(0, str(REPO / "scripts"))
    from benchmark import compare_pushdown_with_pandas

    from mhsds_pipeline.period import ReportingPeriod
    from mhsds_pipeline.quality.gate import sql_context
    from mhsds_pipeline.quality.rules import load_catalogue
    from mhsds_pipeline.system.flow import WAREHOUSE_FILE
    from mhsds_pipeline.system.validate import duckdb_settings, provider_schema

    national.unlink(missing_ok=True)
    catalogue = load_catalogue()
    t0 = time.perf_counter()
    con = duckdb.connect(str(national))
    try:
        con.execute("CREATE SCHEMA national")
        for n, org in enumerate(sorted(orgs)):
            con.execute(f"ATTACH '{Path(work) / period / org / WAREHOUSE_FILE}' AS p (READ_ONLY)")
            for table in catalogue.cascade_order:
                model = catalogue.model(table)
                source = f'p.{provider_schema(org)}."{model}"'
                if n == 0:
                    con.execute(f'CREATE TABLE national."{model}" AS SELECT * FROM {source}')
                else:
                    con.execute(f'INSERT INTO national."{model}" SELECT * FROM {source}')
            con.execute("DETACH p")
    finally:
        con.close()
    built = time.perf_counter() - t0
    settings = duckdb_settings(national)
    ctx = replace(sql_context(settings, ReportingPeriod.parse(period)), schema="national")
    gx = compare_pushdown_with_pandas(f"duckdb:///{national}", catalogue, ctx)
    national.unlink(missing_ok=True)
    return {"providers": len(orgs), "build_seconds": round(built, 1), "gx": gx}


def _digests(month: Path) -> dict[str, str]:
    import hashlib

    return {
        f.relative_to(month).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(month.rglob("*"))
        if f.is_file()
    }


def child_spark(inbox: Path, period: str, orgs: list[str], work: Path) -> dict:
    """The month's flow for ``orgs`` on local Spark (rules, DQMI, SDCS, dbt-spark, LTP, combine),
    then on DuckDB, one provider after another in this process; are the published files equal?"""
    import shutil

    from mhsds_pipeline.system.flow import combine, list_packages, load_and_validate_provider
    from mhsds_pipeline.system.sources import package_header
    from mhsds_pipeline.system.spark import spark_session
    from mhsds_pipeline.system.spark_month import load_and_validate_provider_spark

    work = Path(work)
    shutil.rmtree(work, ignore_errors=True)
    packages = [p for p in list_packages(inbox, period) if package_header(p)[0] in set(orgs)]
    t0 = time.perf_counter()
    spark = spark_session(work / "spark")
    startup = time.perf_counter() - t0
    t1 = time.perf_counter()
    runs = [load_and_validate_provider_spark(p, period, work / "spark_work", spark) for p in packages]
    done = sorted(r.org_id_provider for r in runs)
    combine(inbox, period, work / "spark_out", work / "spark_work", done, run_id="benchmark")
    spark_seconds = time.perf_counter() - t1
    t2 = time.perf_counter()
    for p in packages:
        load_and_validate_provider(p, period, work / "duckdb_work")
    combine(inbox, period, work / "duckdb_out", work / "duckdb_work", done, run_id="benchmark")
    duckdb_seconds = time.perf_counter() - t2
    return {
        "providers": len(packages),
        "rows": sum(sum(r.rows.values()) for r in runs),
        "spark_startup_seconds": round(startup, 1),
        "spark_seconds": round(spark_seconds, 1),
        "duckdb_seconds": round(duckdb_seconds, 1),
        "same_files": _digests(work / "spark_out" / period) == _digests(work / "duckdb_out" / period),
    }


# ---------------------------------------------------------------------------------------------
# Parent
# ---------------------------------------------------------------------------------------------


def _summary(inbox: Path, period: str) -> dict:
    return json.loads((inbox / period / "generation_summary.json").read_text())


def _generated(inbox: Path, period: str, ns: argparse.Namespace) -> bool:
    try:
        s = _summary(inbox, period)
    except (OSError, ValueError):
        return False
    return (s["providers"], float(s["total_scale"]), s["seed"]) == (ns.providers, ns.total_scale, ns.seed)


def _package_rows(package: Path) -> int:
    rows = 0
    for f in package.glob("*.csv"):
        with f.open("rb") as fh:
            rows += max(0, sum(1 for _ in fh) - 1)
    return rows


def complete_with_copies(inbox: Path, period: str, ns: argparse.Namespace) -> None:
    """Fill the registry's providers that were not generated (a stopped ``mhsds generate``) with
    copies of generated packages of the nearest size, under their own ODS codes.

    Generating a national month through the real trust pipeline takes about an hour here; the
    flow's cost per package depends on its size and shape, not on who it is, so a copy measures the
    same work. The copy's ODS code replaces the source's everywhere (header, site codes, local
    identifier prefixes); its NHS numbers are the source's (the same people at two providers); its
    package manifest is left out (the flow does not read it). The summary says which are copies."""
    import csv
    import shutil

    month = inbox / period
    with (inbox / "providers.csv").open(newline="") as fh:
        registry = list(csv.DictReader(fh))
    generated: dict[str, float] = {}
    for r in registry:
        org, package = r["org_id_provider"], month / r["org_id_provider"]
        if package.is_dir() and (month / f"{org}.ground_truth.csv").is_file():  # written after the package
            generated[org] = float(r["scale"])
        elif package.exists():
            shutil.rmtree(package)  # a package the stopped run had not finished
    shutil.rmtree(inbox / ".work", ignore_errors=True)
    sources = {o: s for o, s in generated.items() if o != "R1A"}  # R1A's code is also inside other codes
    if not sources:
        raise SystemExit(f"no generated package under {month} to copy")
    by_provider: dict[str, dict] = {}
    for r in registry:
        org, scale = r["org_id_provider"], float(r["scale"])
        if org in generated:
            by_provider[org] = {"org_id_provider": org, "scale": scale, "rows": _package_rows(month / org)}
            continue
        src = min(sources, key=lambda o: (abs(sources[o] - scale), o))
        target = month / org
        target.mkdir(parents=True)
        for f in sorted((month / src).glob("*.csv")):
            (target / f.name).write_bytes(f.read_bytes().replace(src.encode(), org.encode()))
        rows = _package_rows(target)
        by_provider[org] = {"org_id_provider": org, "scale": sources[src], "rows": rows, "copy_of": src}
    summary = {
        "period": period,
        "providers": len(registry),
        "total_scale": ns.total_scale,
        "seed": ns.seed,
        "generated": len(generated),
        "copies": len(registry) - len(generated),
        "total_rows": sum(p["rows"] for p in by_provider.values()),
        "seconds": 0.0,
        "dbt_project_dir": str(inbox / "reference" / "dbt_project"),
        "by_provider": by_provider,
    }
    (month / "generation_summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(
        f"completed the registry: {len(generated)} generated packages, {summary['copies']} copies of the "
        f"nearest-sized generated one under their own codes; {summary['total_rows']:,} rows"
    )


def _steps(by_provider: dict[str, dict], targets: list[float]) -> list[tuple[float, list[str], int]]:
    """For each target scale, the first providers (registry order) whose rows reach it."""
    out = []
    for target in targets:
        want, orgs, rows = target * TRUST_ROWS_PER_SCALE, [], 0
        for org in sorted(by_provider):
            if rows >= want:
                break
            orgs.append(org)
            rows += by_provider[org]["rows"]
        out.append((target, orgs, rows))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--providers", type=int, default=60)
    p.add_argument("--total-scale", type=float, default=67.0, help="sum of the providers' scales")
    p.add_argument("--period", default="2026-10")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--root", default=str(REPO / "data" / "benchmark" / "system"))
    p.add_argument("--regenerate", action="store_true")
    p.add_argument(
        "--complete-with-copies",
        action="store_true",
        help="fill providers a stopped generation left out with copies of generated packages",
    )
    p.add_argument("--no-steps", action="store_true")
    p.add_argument("--steps", default="10,20,40")
    p.add_argument("--spark-providers", type=int, default=2, help="0: leave Spark out")
    p.add_argument("--no-gx-national", action="store_true", help="leave out GX on the national tables")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--only", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    p.add_argument("--result", default="", help=argparse.SUPPRESS)
    ns = p.parse_args()
    root = Path(ns.root)
    inbox, work = root / "inbox", root / "work"

    if ns.child:
        only = [o for o in ns.only.split(",") if o]
        if ns.child == "system":
            result = child_system(inbox, ns.period, Path(ns.out), work, ns.workers, only)
        elif ns.child == "rules":
            result = child_rules(work, ns.period, only[0])
        elif ns.child == "gx_national":
            result = child_gx_national(work, ns.period, only, root / "gx_national.duckdb")
        else:
            result = child_spark(inbox, ns.period, only, root / "spark_work")
        Path(ns.result).write_text(json.dumps(result, default=str))
        return

    print(f"System view benchmark: {ns.providers} providers, total scale {ns.total_scale}, {ns.period}")
    print(f"machine: {os.cpu_count()} cores; {ns.workers} provider(s) at a time")
    if ns.complete_with_copies and not _generated(inbox, ns.period, ns):
        complete_with_copies(inbox, ns.period, ns)
    if ns.regenerate or not _generated(inbox, ns.period, ns):
        t0 = time.perf_counter()
        cmd = [str(Path(sys.executable).parent / "mhsds"), "generate", "--providers", str(ns.providers)]
        cmd += ["--total-scale", str(ns.total_scale), "--period", ns.period, "--seed", str(ns.seed)]
        cmd += ["--out-dir", str(inbox), "--workers", str(min(ns.workers, 2))]
        subprocess.run(cmd, check=True)
        print(f"generate: {time.perf_counter() - t0:.0f} s")
    summary = _summary(inbox, ns.period)
    # the synthetic providers' ODS codes are in the generated copy of the reference data only
    os.environ["MHSDS_DBT_PROJECT_DIR"] = summary["dbt_project_dir"]
    by_provider = summary["by_provider"]
    total_rows = summary["total_rows"]
    copies = sum(1 for p in by_provider.values() if p.get("copy_of"))
    made = (
        f"{copies} of them copies of generated packages"
        if copies
        else f"generated in {summary['seconds']:.0f} s"
    )
    print(f"packages: {len(by_provider)} providers, {total_rows:,} rows ({made})")

    rows = []
    national = run_stage(["--child", "system", "--out", str(root / "output"), *_common(ns)])
    rows.append(("national month", national))
    if not ns.no_steps:
        for target, orgs, _ in _steps(by_provider, [float(x) for x in ns.steps.split(",")]):
            r = run_stage(
                [
                    "--child",
                    "system",
                    "--out",
                    str(root / f"output_scale{target:g}"),
                    "--only",
                    ",".join(orgs),
                    *_common(ns),
                ]
            )
            rows.append((f"scale {target:g} equivalent", r))
    print()
    print("| run | providers | rows | wall | providers | combine | rows/s | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['providers']} | {r['rows']:,} | {r['wall_seconds']:.0f} s | {r['providers_seconds']:.0f} s "
            f"| {r['combine_seconds']:.1f} s | {r['rows'] / r['wall_seconds']:,.0f} | {r['peak_rss_mb']:,} MB |"
        )

    largest = max(by_provider, key=lambda o: by_provider[o]["rows"])
    r = run_stage(["--child", "rules", "--only", largest, *_common(ns)])
    gx = r["gx"]
    print()
    print(
        f"rules on the largest provider {largest} ({r['rows']:,} rows): engine {r['rules_seconds']} s, "
        f"one-pass floor {r['floor_seconds']} s ({r['rules_over_floor']}x), same counts: {r['same_counts']}; "
        f"the provider step's gate (rules + DQMI {r['dqmi_seconds']} s): {r['gate_over_floor']}x the floor"
    )
    print(
        f"GX on {gx['rows']:,} rows, {gx['expectations']} expectations: pushdown {gx['pushdown_seconds']} s, "
        f"pandas {gx['pandas_total_seconds']} s (load {gx['pandas_load_seconds']} + validate "
        f"{gx['pandas_validate_seconds']}; frames {gx['pandas_peak_frame_mb']} MB): "
        f"{gx['pandas_total_seconds'] / gx['pushdown_seconds']:.2f}x; same verdict: {gx['same_verdict']}"
    )

    if not ns.no_gx_national:
        r = run_stage(["--child", "gx_national", "--only", ",".join(by_provider), *_common(ns)])
        gx = r["gx"]
        print(
            f"GX on the national tables ({r['providers']} providers' rows in one table per IDB table, built in "
            f"{r['build_seconds']} s): {gx['rows']:,} rows, {gx['expectations']} expectations: pushdown "
            f"{gx['pushdown_seconds']} s, pandas {gx['pandas_total_seconds']} s (load {gx['pandas_load_seconds']} "
            f"+ validate {gx['pandas_validate_seconds']}; frames {gx['pandas_peak_frame_mb']:,} MB; peak RSS "
            f"{r['peak_rss_mb']:,} MB): {gx['pandas_total_seconds'] / gx['pushdown_seconds']:.2f}x; "
            f"same verdict: {gx['same_verdict']}"
        )

    if ns.spark_providers:
        smallest = sorted(by_provider, key=lambda o: by_provider[o]["rows"])[: ns.spark_providers]
        r = run_stage(["--child", "spark", "--only", ",".join(smallest), *_common(ns)])
        per_provider = r["spark_seconds"] / max(r["providers"], 1)
        print()
        print(
            f"Spark (local[2]) month on {r['providers']} providers, {r['rows']:,} rows (rules, DQMI, SDCS, "
            f"dbt-spark, LTP, combine): {r['spark_seconds']} s (+{r['spark_startup_seconds']} s session start) "
            f"vs DuckDB {r['duckdb_seconds']} s one provider at a time; published files identical: "
            f"{r['same_files']}; peak RSS {r['peak_rss_mb']:,} MB with the JVM; "
            f"{len(by_provider)} providers at this per-provider rate: about "
            f"{per_provider * len(by_provider) / 60:.0f} min"
        )


def _common(ns: argparse.Namespace) -> list[str]:
    return ["--period", ns.period, "--root", ns.root, "--workers", str(ns.workers)]


if __name__ == "__main__":
    main()
