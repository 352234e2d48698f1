"""Which failures retry, and the warehouse lock between runs (held, refused, recovered, inherited)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

from mhsds_pipeline.failures import (
    SourceUnavailableError,
    WarehouseBusyError,
    is_retryable,
    run_step,
)
from mhsds_pipeline.locks import TOKEN_ENV, lock_path, read_holder, warehouse_lock
from mhsds_pipeline.period import PeriodError

pytestmark = pytest.mark.unit


def _operational(message: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception(message))


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (PeriodError("month 13"), False),
        (ValueError("bad config"), False),
        (KeyError("source_watermark"), False),
        (_operational("no such table: referrals"), False),
        (_operational('connection to server at "127.0.0.1", port 5432 failed: Connection refused'), True),
        (_operational("database is locked"), True),
        (ConnectionResetError("peer reset"), True),
        (SourceUnavailableError("EPR down"), True),
        (WarehouseBusyError("held"), True),
    ],
)
def test_only_failures_a_later_try_can_cure_are_retryable(exc, retry):
    assert is_retryable(exc) is retry


def test_retryable_cause_is_found_through_the_chain():
    try:
        try:
            raise ConnectionRefusedError("EPR refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("extract failed for 2026-10") from inner
    except RuntimeError as outer:
        assert is_retryable(outer)


def test_run_step_fails_deterministic_errors_at_once_and_lets_transient_ones_retry():
    from airflow.sdk.exceptions import AirflowFailException

    def impossible():
        raise PeriodError("Reporting period '2026-13' has month 13")

    with pytest.raises(AirflowFailException, match=r"PeriodError: Reporting period '2026-13'") as caught:
        run_step(impossible)
    assert isinstance(caught.value.__cause__, PeriodError)

    def unreachable():
        raise SourceUnavailableError("EPR unreachable")

    with pytest.raises(SourceUnavailableError):
        run_step(unreachable)
    assert run_step(lambda a, b=0: a + b, 2, b=3) == 5


# -- the lock ----------------------------------------------------------------------------------


_HOLD = textwrap.dedent(
    """
    import sys, time
    from dataclasses import replace
    from pathlib import Path
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.locks import warehouse_lock
    s = replace(load_settings(), warehouse_target="duckdb", warehouse_path=Path(sys.argv[1]))
    with warehouse_lock(s, "scheduled__2026-11-05", period="2026-10", step="dbt_build", wait_seconds=0):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _holder_process(tmp_settings, seconds: float, env=None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_settings.warehouse_path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_naming_the_run_that_holds_the_warehouse(tmp_settings):
    tmp_settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    proc = _holder_process(tmp_settings, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(WarehouseBusyError) as caught:
            with warehouse_lock(tmp_settings, "cli__second", period="2026-10", wait_seconds=0):
                pytest.fail("entered a held lock")
        message = str(caught.value)
        assert time.monotonic() - t0 < 5
        assert "run scheduled__2026-11-05 (period 2026-10 step dbt_build)" in message
        assert f"pid {proc.pid}" in message and str(tmp_settings.warehouse_path) in message
        # waiting gives up after the wait, with the same message
        with pytest.raises(WarehouseBusyError, match="waited 1 s"):
            with warehouse_lock(tmp_settings, "cli__third", wait_seconds=1, poll_seconds=0.2):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_a_lock_left_by_a_killed_run_is_recovered(tmp_settings, caplog):
    tmp_settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    proc = _holder_process(tmp_settings, 60)
    os.kill(proc.pid, signal.SIGKILL)  # kill -9: no chance to release
    proc.wait()
    assert read_holder(lock_path(tmp_settings)).run_id == "scheduled__2026-11-05"  # stale record left
    with caplog.at_level("WARNING", logger="mhsds_pipeline.locks"):
        with warehouse_lock(tmp_settings, "cli__after", wait_seconds=0) as me:
            assert me.run_id == "cli__after"
            assert read_holder(lock_path(tmp_settings)).run_id == "cli__after"
    assert "recovered the warehouse lock left by run scheduled__2026-11-05" in caplog.text
    assert read_holder(lock_path(tmp_settings)) is None  # released cleanly


def test_the_lock_is_reentrant_and_inherited_by_the_run_it_starts(tmp_settings):
    tmp_settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with warehouse_lock(tmp_settings, "cli__run", wait_seconds=0, token="tok123") as me:
        with warehouse_lock(tmp_settings, "cli__run", wait_seconds=0):  # same process: nested
            pass
        assert me.token == "tok123"
        code = (
            "import sys; from dataclasses import replace; from pathlib import Path;"
            "from mhsds_pipeline.config import load_settings; from mhsds_pipeline.locks import warehouse_lock;"
            "s = replace(load_settings(), warehouse_target='duckdb', warehouse_path=Path(sys.argv[1]));"
            "\nwith warehouse_lock(s, 'task', wait_seconds=0) as h: print(h.run_id)"
        )
        child = subprocess.run(
            [sys.executable, "-c", code, str(tmp_settings.warehouse_path)],
            env={**os.environ, TOKEN_ENV: "tok123"},
            capture_output=True,
            text=True,
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == "cli__run"  # proceeded under the parent's lock
        stranger = subprocess.run(
            [sys.executable, "-c", code, str(tmp_settings.warehouse_path)],
            env={**os.environ, TOKEN_ENV: "other"},
            capture_output=True,
            text=True,
        )
        assert stranger.returncode != 0 and "WarehouseBusyError" in stranger.stderr


_HOLD_MONTH = textwrap.dedent(
    """
    import sys, time
    from dataclasses import replace
    from pathlib import Path
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.locks import publication_lock
    s = replace(load_settings(), data_dir=Path(sys.argv[1]))
    with publication_lock(s, "2026-10", "asset_triggered__x", "publish_mhis"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def test_publication_steps_of_a_month_wait_for_each_other(tmp_settings):
    """publish, package_submission and publish_mhis change output/<period>: the second waits."""
    from mhsds_pipeline.locks import publication_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_MONTH, str(tmp_settings.data_dir), "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with publication_lock(
            tmp_settings, "2026-10", "manual__y", "package_submission", wait_seconds=60
        ) as me:
            waited = time.monotonic() - t0
            assert me.step == "package_submission"
        assert 0.5 < waited < 30  # waited for the holder, then went on
        holder.wait(timeout=30)
        # another month is independent; a holder that outlives the wait is named
        with publication_lock(tmp_settings, "2026-09", "manual__y", "publish", wait_seconds=0):
            pass
        again = subprocess.Popen(
            [sys.executable, "-c", _HOLD_MONTH, str(tmp_settings.data_dir), "30"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert again.stdout.readline().strip() == "held"
        with pytest.raises(
            WarehouseBusyError, match=r"The published month 2026-10 .* run asset_triggered__x"
        ):
            with publication_lock(tmp_settings, "2026-10", "manual__z", "publish", wait_seconds=0.5):
                pass
        again.kill()
        again.wait()
    finally:
        holder.kill()
        holder.wait()


_HOLD_PG = textwrap.dedent(
    """
    import time
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.locks import warehouse_lock
    with warehouse_lock(load_settings(), "scheduled__monthly", period="2026-10", step="dbt_build",
                        wait_seconds=0):
        print("held", flush=True)
        time.sleep(30)
    """
)


@pytest.mark.parametrize(("target", "finance_waits"), [("postgres", False), ("duckdb", True)])
def test_finance_steps_share_a_postgres_warehouse_but_not_a_duckdb_file(
    tmp_path, monkeypatch, target, finance_waits
):
    """The MHIS tasks (shared_schema=False) build raw_finance and the finance marts: on
    PostgreSQL they run beside a monthly step holding the warehouse; on DuckDB they wait."""
    env = {
        **os.environ,
        "MHSDS_WAREHOUSE_TARGET": target,
        "MHSDS_DATA_DIR": str(tmp_path / "data"),
        "MHSDS_WAREHOUSE_PATH": str(tmp_path / "data" / "warehouse.duckdb"),
    }
    for name in ("MHSDS_WAREHOUSE_TARGET", "MHSDS_DATA_DIR", "MHSDS_WAREHOUSE_PATH"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("MHSDS_LOCK_WAIT_SECONDS", "0")
    (tmp_path / "data").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_PG], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        finance = lambda period: f"built {period}"  # noqa: E731
        if finance_waits:
            with pytest.raises(WarehouseBusyError, match="run scheduled__monthly"):
                run_step(finance, "2026-10", warehouse_holder="asset_triggered__x", shared_schema=False)
        else:
            assert run_step(
                finance, "2026-10", warehouse_holder="asset_triggered__x", shared_schema=False
            ) == ("built 2026-10")
        with pytest.raises(WarehouseBusyError):  # a monthly step always takes its turn
            run_step(finance, "2026-10", warehouse_holder="manual__y")
    finally:
        holder.kill()
        holder.wait()
