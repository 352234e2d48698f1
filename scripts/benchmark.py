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


def compare_pushdown_with_pandas(url: str, catalogue, ctx) -> dict:
    """Time the same GX expectations by SQL pushdown and on tables loaded into pandas.

    Issue #3: only rules with a pandas implementation are compared (the
    SQL-only ``UnexpectedRowsExpectation`` rules are left out of both sides). Returns seconds
    for pushdown, for loading the marts into pandas, and for validating in pandas.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd
    import sqlalchemy as sa

    from mhsds_pipeline.quality.gx_suites import (
        RESULT_FORMAT,
        _context,
        _datasource,
        _run,
        expectation_for,
        q,
    )

    def comparable(rule):
        e = expectation_for(rule, ctx)
        return None if isinstance(e, gxe.UnexpectedRowsExpectation) else e

    per_table = {
        t: [e for e in (comparable(r) for r in catalogue.for_table(t)) if e is not None]
        for t in catalogue.cascade_order
    }
    per_table = {t: es for t, es in per_table.items() if es}
    n = sum(len(es) for es in per_table.values())

    t0 = time.perf_counter()
    context = _context(None)
    datasource = _datasource(context, url)
    suites = {
        f"marts__{t}": (catalogue.model(t), [comparable(r) for r in catalogue.for_table(t) if comparable(r)])
        for t in per_table
    }
    sql_result = _run(context, datasource, ctx.schema, suites, "compare_sql", docs=False)
    pushdown = time.perf_counter() - t0

    t1 = time.perf_counter()
    engine = sa.create_engine(url)
    frames = {}
    with engine.connect() as conn:
        for t in per_table:
            frames[t] = pd.read_sql_query(
                sa.text(f"SELECT * FROM {q(ctx.schema)}.{q(catalogue.model(t))}"), conn
            )
    engine.dispose()
    load = time.perf_counter() - t1

    t2 = time.perf_counter()
    pcontext = _context(None)
    pds = pcontext.data_sources.add_pandas(name="frames")
    definitions = []
    for t, df in frames.items():
        asset = pds.add_dataframe_asset(name=t)
        batch = asset.add_batch_definition_whole_dataframe(f"{t}__frame")
        suite = pcontext.suites.add(gx.ExpectationSuite(name=f"pandas__{t}"))
        for r in catalogue.for_table(t):
            e = comparable(r)
            if e is not None:
                suite.add_expectation(e)
        definitions.append((batch, suite, df))
    pandas_success = True
    for batch, suite, df in definitions:
        res = batch.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format=RESULT_FORMAT)
        pandas_success &= bool(res.success)
    validate = time.perf_counter() - t2
    return {
        "expectations": n,
        "rows": int(sum(len(df) for df in frames.values())),
        "pushdown_seconds": round(pushdown, 3),
        "pandas_load_seconds": round(load, 3),
        "pandas_validate_seconds": round(validate, 3),
        "pandas_total_seconds": round(load + validate, 3),
        "pandas_peak_frame_mb": round(
            sum(df.memory_usage(deep=True).sum() for df in frames.values()) / 2**20, 1
        ),
        "same_verdict": bool(sql_result.success) == pandas_success,
    }


def floor(settings, period: str) -> dict:
    """The gate's one-pass floor (issue #15) on the warehouse the quality stage just gated.

    ``cascade=True``: the predicates read the parents' rejections the gate recorded, so the floor
    counts what the gate counted; the literal one-SELECT-per-table form is timed beside it."""
    import sqlalchemy as sa

    from mhsds_pipeline.period import ReportingPeriod
    from mhsds_pipeline.quality.floor import floor_counts, floor_sql, scan_kinds
    from mhsds_pipeline.quality.gate import sql_context
    from mhsds_pipeline.quality.rules import load_catalogue
    from mhsds_pipeline.warehouse import sqlalchemy_url

    catalogue = load_catalogue()
    ctx = sql_context(settings, ReportingPeriod.parse(period))
    engine = sa.create_engine(sqlalchemy_url(settings))
    try:
        batched = floor_counts(engine, catalogue, ctx, cascade=True)
        literal = floor_counts(engine, catalogue, ctx, cascade=True, batch=None)
    finally:
        engine.dispose()
    slowest = sorted(batched.per_table_seconds.items(), key=lambda kv: -kv[1])[:3]
    return {
        "floor_seconds": batched.seconds,
        "literal_floor_seconds": literal.seconds,
        "selects": sum(len(floor_sql(catalogue, ctx, t)) for t in batched.per_table_seconds),
        "tables": len(batched.per_table_seconds),
        "rules": len(batched.counts),
        "failing_rows": sum(batched.counts.values()),
        "same_counts": batched.counts == literal.counts,
        "scan_kinds": scan_kinds(catalogue, ctx),
        "slowest_tables": slowest,
    }


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
    elif stage == "floor":
        extra = {"floor": floor(settings, period)}
        rows = sum(
            json.loads((settings.landing_dir(period) / "_extract.json").read_text())["row_counts"].values()
        )
    elif stage == "pushdown_vs_pandas":
        from mhsds_pipeline.period import ReportingPeriod
        from mhsds_pipeline.quality.gate import sql_context
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
    "floor",
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
    gate_seconds: dict = {}
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
            gate_seconds = figures["quality_seconds"]
        if "floor" in figures:
            f, g = figures["floor"], gate_seconds
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(f["scan_kinds"].items()))
            print(
                f"      the gate beside its floor: gate {g['total']:.2f} s (rules SQL {g['rules_sql']:.2f} s, "
                f"GX + Data Docs {g['gx_marts']:.2f} s, DQMI {g['dqmi']:.2f} s); floor {f['floor_seconds']:.2f} s "
                f"({f['selects']} SELECTs over {f['tables']} tables, {f['rules']} rules, {f['failing_rows']:,} "
                f"failing rows); gate/floor {g['total'] / max(f['floor_seconds'], 1e-9):.1f}x, "
                f"GX/floor {g['gx_marts'] / max(f['floor_seconds'], 1e-9):.1f}x",
                flush=True,
            )
            print(
                f"      literal floor (one SELECT per table) {f['literal_floor_seconds']:.2f} s, same counts: "
                f"{f['same_counts']}; rules by scan: {kinds}; slowest tables: {f['slowest_tables']}",
                flush=True,
            )
        if "comparison" in figures:
            c = figures["comparison"]
            print(
                f"      same {c['expectations']} GX expectations on {c['rows']:,} rows: pushdown "
                f"{c['pushdown_seconds']:.2f} s vs pandas {c['pandas_total_seconds']:.2f} s "
                f"(load {c['pandas_load_seconds']:.2f} s + validate {c['pandas_validate_seconds']:.2f} s, "
                f"frames {c['pandas_peak_frame_mb']} MB), pandas/pushdown "
                f"{c['pandas_total_seconds'] / max(c['pushdown_seconds'], 1e-9):.2f}x; same verdict: {c['same_verdict']}",
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
        total = sum(
            r["seconds"]
            for r in all_results
            if r["scale"] == scale and r["stage"] not in ("generate", "floor")
        )
        print(f"  scale {scale:>4g}  pipeline total (excluding generate and the floor): {total:.2f} s")
    out = Path(ns.root) / "benchmark_results.json"
    out.write_text(json.dumps(all_results, indent=2))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
