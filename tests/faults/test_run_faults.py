"""Run-level faults from the command line: a month that has not ended, an impossible month, a
second run while one holds the warehouse, a lock left by a killed run.

Each case asserts the exit code, an error that names what is wrong, that the last good outputs
of the published month are byte-identical, and that no NHS number reaches the output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from _fault_helpers import (
    assert_no_nhs_number,
    assert_tree_unchanged,
    settings_env,
    tree_snapshot,
)
from conftest import scratch_settings

from mhsds_pipeline.period import ReportingPeriod

pytestmark = [pytest.mark.integration]

MHSDS = str(Path(sys.executable).with_name("mhsds"))
PERIOD = "2026-09"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One small month, published in-process; the CLI cases run against it."""
    from mhsds_pipeline.pipeline import run_all
    from mhsds_pipeline.synthetic.generator import generate

    base = tmp_path_factory.mktemp("runfaults")
    source = base / "data" / "epr" / "epr.sqlite"
    source.parent.mkdir(parents=True)
    settings = scratch_settings(base, source=source, warehouse=base / "data" / "warehouse" / "mhsds.duckdb")
    generate(settings.source_url, scale=0.02, seed=5, end_period=PERIOD, months=1, out_dir=source.parent)
    env = {**os.environ, **settings_env(settings)}
    env.pop("MHSDS_WAREHOUSE_LOCK_TOKEN", None)
    run_all(PERIOD, "good_run", settings)
    out = base / "output" / PERIOD
    assert (out / "manifest.json").exists()
    return base, env, settings, out


def _mhsds(env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([MHSDS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _assert_untouched(out: Path, before: dict, target: Path) -> None:
    assert out.resolve() == target
    assert_tree_unchanged(target, before)


def test_a_month_that_has_not_ended_is_refused_before_anything_is_extracted(published):
    base, env, _, out = published
    target, before = out.resolve(), tree_snapshot(out.resolve())
    current = ReportingPeriod(date.today().year, date.today().month)
    proc = _mhsds(env, "run", "--no-airflow", "--period", str(current))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"Reporting period {current} has not ended yet" in proc.stderr
    assert "--allow-open-period" in proc.stderr and "never packaged" in proc.stderr
    assert not (base / "data" / "landing" / str(current)).exists()  # nothing extracted
    assert not (base / "output" / str(current)).exists()
    _assert_untouched(out, before, target)
    assert_no_nhs_number(proc.stdout, proc.stderr)
    # the same for one step, and for a month in the future
    step = _mhsds(env, "step", "extract", "--period", str(current.shift(2)))
    assert step.returncode == 2 and "has not ended yet" in step.stderr
    assert not (base / "data" / "landing" / str(current.shift(2))).exists()


@pytest.mark.parametrize(("period", "says"), [("2026-13", "months run 01-12"), ("2026-9", "YYYY-MM")])
def test_an_impossible_month_is_refused_naming_it(published, period, says):
    _, env, _, out = published
    target, before = out.resolve(), tree_snapshot(out.resolve())
    proc = _mhsds(env, "run", "--no-airflow", "--period", period)
    assert proc.returncode == 2 and period in proc.stderr and says in proc.stderr
    assert "Traceback" not in proc.stderr
    _assert_untouched(out, before, target)


_HOLD = textwrap.dedent(
    """
    import sys, time
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.locks import warehouse_lock
    with warehouse_lock(load_settings(), "manual__held_by_test", period="2026-09", step="dbt_build",
                        wait_seconds=0):
        print("held", flush=True)
        time.sleep(float(sys.argv[1]))
    """
)


def _hold_lock(env, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(seconds)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_naming_the_run_that_holds_the_warehouse(published):
    base, env, _, out = published
    target, before = out.resolve(), tree_snapshot(out.resolve())
    holder = _hold_lock(env, 120)
    try:
        for args in (("run", "--no-airflow", "--period", PERIOD), ("step", "load-raw", "--period", PERIOD)):
            proc = _mhsds(env, *args)
            assert proc.returncode == 3, (args, proc.stderr[-2000:])
            assert "is in use by run manual__held_by_test (period 2026-09 step dbt_build)" in proc.stderr
            assert f"pid {holder.pid}" in proc.stderr and "Traceback" not in proc.stderr
            assert_no_nhs_number(proc.stdout, proc.stderr)
        _assert_untouched(out, before, target)
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_run_is_recovered_by_the_next_run(published):
    base, env, _, out = published
    holder = _hold_lock(env, 120)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    proc = _mhsds(env, "step", "load-raw", "--period", PERIOD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recovered the warehouse lock left by run manual__held_by_test" in proc.stderr
    assert_no_nhs_number(proc.stdout, proc.stderr)
