#!/usr/bin/env python
"""Benchmark the pipeline stages at scale 1 and scale 10 and print a table.

Each stage runs in its own Python process so that its peak memory (max RSS) is its own:
generate -> extract -> load_raw -> dbt build -> publish. Figures are printed, not asserted.

    .venv/bin/python scripts/benchmark.py                 # scales 1 and 10, one month each
    .venv/bin/python scripts/benchmark.py --scales 1 --period 2026-10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(stage: str, period: str, scale: float, seed: int) -> None:
    """Run one stage in this process and print its figures as JSON on the last line."""
    from mhsds_pipeline import pipeline
    from mhsds_pipeline.config import load_settings

    settings = load_settings()
    extra: dict = {}
    t0 = time.perf_counter()
    if stage == "generate":
        from mhsds_pipeline.synthetic.generator import generate

        summary = generate(
            settings.source_url, scale=scale, seed=seed, end_period=period, months=1, out_dir=settings.epr_dir
        )
        rows = sum(
            json.loads((settings.epr_dir / "generation_summary.json").read_text())["row_counts"].values()
        )
        del summary
    elif stage == "extract":
        rows = sum(pipeline.extract(period, settings)["row_counts"].values())
    elif stage == "load_raw":
        rows = sum(pipeline.load_raw(period, settings)["row_counts"].values())
    elif stage == "dbt_build":
        wm = json.loads((settings.landing_dir(period) / "_extract.json").read_text())["source_watermark"]
        pipeline.transform(period, wm, settings)
        rows = sum(
            json.loads((settings.landing_dir(period) / "_extract.json").read_text())["row_counts"].values()
        )
    elif stage == "validate_raw":
        pipeline.validate_raw(period, f"benchmark-{scale}", settings)
        rows = sum(
            json.loads((settings.landing_dir(period) / "_extract.json").read_text())["row_counts"].values()
        )
    elif stage == "quality":
        gate = pipeline.quality(period, f"benchmark-{scale}", settings)
        rows = sum(gate["rejected_rows"].values()) + sum(
            json.loads((settings.landing_dir(period) / "_extract.json").read_text())["row_counts"].values()
        )
        extra = {"quality_seconds": gate["seconds"]}
    elif stage == "pushdown_vs_pandas":
        from mhsds_pipeline.period import ReportingPeriod
        from mhsds_pipeline.quality.gate import sql_context
        from mhsds_pipeline.quality.gx_suites import compare_pushdown_with_pandas
        from mhsds_pipeline.quality.rules import load_catalogue
        from mhsds_pipeline.warehouse import sqlalchemy_url

        cmp = compare_pushdown_with_pandas(
            sqlalchemy_url(settings), load_catalogue(), sql_context(settings, ReportingPeriod.parse(period))
        )
        rows = cmp["rows"]
        extra = {"comparison": cmp}
    elif stage == "publish":
        rows = sum(pipeline.publish(period, f"benchmark-{scale}", settings)["row_counts"].values())
    elif stage == "package":
        from mhsds_pipeline.submission import package

        rows = sum(package(period, f"benchmark-{scale}", settings)["row_counts"].values())
    else:
        raise SystemExit(f"unknown stage {stage}")
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"stage": stage, "seconds": seconds, "rows": rows, "peak_mb": peak_mb, **extra}))


STAGES = [
    "generate",
    "extract",
    "load_raw",
    "validate_raw",
    "dbt_build",
    "quality",
    "pushdown_vs_pandas",
    "publish",
    "package",
]


def run_scale(scale: float, period: str, seed: int, root: Path) -> list[dict]:
    base = root / f"scale-{scale:g}"
    env = dict(os.environ)
    env.update(
        MHSDS_HOME=str(REPO),
        MHSDS_DATA_DIR=str(base / "data"),
        MHSDS_OUTPUT_DIR=str(base / "output"),
        MHSDS_SOURCE_URL=f"sqlite:///{base / 'data' / 'epr' / 'epr.sqlite'}",
        MHSDS_WAREHOUSE_PATH=str(base / "data" / "warehouse.duckdb"),
        MHSDS_LOG_LEVEL="WARNING",
    )
    (base / "data" / "epr").mkdir(parents=True, exist_ok=True)
    results = []
    for stage in STAGES:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                stage,
                "--period",
                period,
                "--scale",
                str(scale),
                "--seed",
                str(seed),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
            raise SystemExit(f"stage {stage} failed at scale {scale}")
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        figures["scale"] = scale
        results.append(figures)
        print(
            f"  scale {scale:>4g}  {stage:<10} {figures['seconds']:>8.2f} s  {figures['rows']:>10,} rows  "
            f"{figures['rows'] / max(figures['seconds'], 1e-9):>10,.0f} rows/s  peak {figures['peak_mb']:>7.0f} MB",
            flush=True,
        )
        if "quality_seconds" in figures:
            print(f"      quality gate split: {figures['quality_seconds']}", flush=True)
        if "comparison" in figures:
            c = figures["comparison"]
            print(
                f"      same {c['expectations']} GX expectations on {c['rows']:,} rows: pushdown "
                f"{c['pushdown_seconds']:.2f} s vs pandas {c['pandas_total_seconds']:.2f} s "
                f"(load {c['pandas_load_seconds']:.2f} s + validate {c['pandas_validate_seconds']:.2f} s, "
                f"frames {c['pandas_peak_frame_mb']} MB); same verdict: {c['same_verdict']}",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--root", default=str(REPO / "data" / "benchmark"))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child(ns.child, ns.period, ns.scale, ns.seed)
        return
    print(f"MHSDS pipeline benchmark, period {ns.period}, {os.cpu_count()} CPUs")
    all_results = []
    for scale in (float(s) for s in ns.scales.split(",")):
        all_results += run_scale(scale, ns.period, ns.seed, Path(ns.root))
        total = sum(r["seconds"] for r in all_results if r["scale"] == scale and r["stage"] != "generate")
        print(f"  scale {scale:>4g}  pipeline total (excluding generate): {total:.2f} s")
    out = Path(ns.root) / "benchmark_results.json"
    out.write_text(json.dumps(all_results, indent=2))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
