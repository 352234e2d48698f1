"""Command line: ``mhsds run`` (the README's first command) and the individual steps.

``mhsds run`` builds the embedded synthetic clinical source if it is absent, prepares Airflow's
SQLite metadata database and runs the ``mhsds_monthly`` DAG for one period with Airflow's own
runner (``airflow dags test``), then checks that the run succeeded and the outputs exist.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from mhsds_pipeline.config import ConfigurationError, Settings, load_settings, redact_url
from mhsds_pipeline.failures import WarehouseBusyError
from mhsds_pipeline.locks import TOKEN_ENV, warehouse_lock
from mhsds_pipeline.period import PeriodError, ReportingPeriod

log = logging.getLogger("mhsds")

DAG_ID = "mhsds_monthly"
MHIS_DAG_ID = "mhsds_mhis"


def _months_between(a: ReportingPeriod, b: ReportingPeriod) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


def ensure_source(settings: Settings, period: ReportingPeriod, scale: float, seed: int, months: int) -> None:
    """Build the synthetic EPR when the embedded source is absent (never touches a real source)."""
    if not settings.is_demo_default_source:  # a configured source is never invented
        return
    db_path = Path(settings.source_url.split("sqlite:///", 1)[1])
    summary_path = settings.epr_dir / "generation_summary.json"
    if db_path.exists() and summary_path.exists():
        summary = json.loads(summary_path.read_text())
        first, last = summary.get("first_period"), summary.get("end_period")
        if first and last and not (first <= str(period) <= last):
            print(
                f"WARNING: the synthetic EPR at {db_path} covers {first}..{last}; period {period} is outside it, "
                "so the month will be nearly empty. Rebuild with `make clean` or `mhsds generate`.",
                file=sys.stderr,
            )
        return
    from mhsds_pipeline.synthetic.generator import generate

    end = max(period, ReportingPeriod.latest_complete())
    months = max(months, _months_between(period, end) + 1)
    print(f"Building the synthetic EPR ({db_path}): scale {scale}, {months} months to {end}, seed {seed} ...")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    generate(
        settings.source_url,
        scale=scale,
        seed=seed,
        end_period=str(end),
        months=months,
        out_dir=settings.epr_dir,
    )


def airflow_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    home = settings.home
    env.setdefault("AIRFLOW_HOME", str(home / ".airflow"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(home / "dags"))
    # the file views plugin (Data Docs, IG page, dbt docs, MHIS links), as in the production image
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(home / "deploy" / "airflow_plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / '.airflow' / 'airflow.db'}")
    env.setdefault("MHSDS_HOME", str(home))
    # A foreground run fails fast; scheduled runs keep the DAG's retries with backoff.
    env.setdefault("MHSDS_TASK_RETRIES", "0")
    return env


def _airflow(args: list[str], env: dict[str, str], capture: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("airflow")
    return subprocess.run([str(exe), *args], env=env, text=True, capture_output=capture, check=False)


def ensure_pool(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Create (or resize) the warehouse pool the DAGs' warehouse tasks run in."""
    from mhsds_pipeline.assets import WAREHOUSE_POOL, WAREHOUSE_POOL_DESCRIPTION
    from mhsds_pipeline.settings import read_settings

    slots = str(read_settings(env).warehouse_pool_slots)  # validated: a whole number 1..32
    return _airflow(["pools", "set", WAREHOUSE_POOL, slots, WAREHOUSE_POOL_DESCRIPTION], env, capture=True)


def run_log_path(settings: Settings, period: ReportingPeriod) -> Path:
    """Where ``mhsds run`` writes Airflow's full output for one run (the console gets a summary)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(airflow_env(settings)["AIRFLOW_HOME"]) / "logs" / "mhsds-run" / f"{period}__{stamp}.log"


def run_dag(
    settings: Settings,
    period: ReportingPeriod,
    allow_open_period: bool = False,
    lock_token: str = "",
    run_log: Path | None = None,
) -> int:
    """Run the DAG with Airflow's runner and return 0 only if the run succeeded.

    Airflow's output goes to ``run_log``; the console gets one line per task as it finishes
    (:mod:`mhsds_pipeline.airflow_run`), and each task's lines are filed where the Airflow UI
    reads task logs."""
    from mhsds_pipeline.airflow_run import file_task_logs, run_dag_test

    env = airflow_env(settings)
    if lock_token:  # this process holds the warehouse lock: the DAG's tasks inherit it
        env[TOKEN_ENV] = lock_token
    run_log = run_log or run_log_path(settings, period)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    for step in (_airflow(["db", "migrate"], env, capture=True), ensure_pool(env)):
        if step.returncode != 0:
            print(step.stdout[-3000:], step.stderr[-3000:], file=sys.stderr)
            return step.returncode
    conf = json.dumps({"period": str(period), "allow_open_period": allow_open_period})
    exe = str(Path(sys.executable).with_name("airflow"))
    for dag_id in (DAG_ID, MHIS_DAG_ID) if not allow_open_period or period.has_ended() else (DAG_ID,):
        # `airflow dags test` runs one DAG: the MHIS DAG, which the scheduler starts from the
        # `mhsds_published` asset event, is run next explicitly for the same period.
        logical_date = datetime.now(UTC).replace(microsecond=0)
        print(f"{dag_id} {period}")
        args = [exe, "dags", "test", dag_id, logical_date.isoformat(), "-c", conf]
        rc, run_id, state = run_dag_test(args, env, dag_id, run_log)
        if run_id:
            file_task_logs(env, dag_id, run_id, run_log)
        if rc != 0 or state != "success":
            print(
                f"DAG {dag_id} for {period} did not succeed (exit {rc}, run state {state}). "
                f"The previous outputs of {period}, if any, are untouched. Airflow's log: {run_log} "
                f"(and the failed task's log in the Airflow UI).",
                file=sys.stderr,
            )
            _print_failure_tail(run_log)
            return rc or 1
    return 0


def _print_failure_tail(run_log: Path, lines: int = 15) -> None:
    """The last error lines of the run log, so a failure is readable without opening the file."""
    try:
        text = run_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    errors = [line for line in text if "[error" in line or "Error" in line or "error:" in line]
    for line in errors[-lines:]:
        print(f"  {line[:300]}", file=sys.stderr)


def _log_to_file(path: Path) -> None:
    """This process's own log lines (source generation, locks) join Airflow's in the run log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)


def cmd_run(ns: argparse.Namespace) -> int:
    settings = load_settings()
    period = ReportingPeriod.resolve(ns.period).require_ended(allow_open=ns.allow_open_period)
    run_id = ns.run_id or f"cli__{uuid.uuid4().hex[:12]}"
    run_log = run_log_path(settings, period)
    if not ns.no_airflow:
        _log_to_file(run_log)
        print(f"MHSDS {period}: Airflow's full log goes to {run_log}")
    # The whole run holds the warehouse: a second run is refused, naming this one.
    with warehouse_lock(settings, run_id, period=str(period), step="mhsds run", wait_seconds=0) as holder:
        ensure_source(settings, period, ns.scale, ns.seed, ns.months)
        if ns.no_airflow:
            from mhsds_pipeline.finance import run_mhis
            from mhsds_pipeline.pipeline import run_all

            result = run_all(str(period), run_id, settings)
            if period.has_ended():  # an open month is not finance's
                result["mhis"] = run_mhis(str(period), settings, run_id=run_id)
            print(json.dumps(result, indent=2, default=str))
            rc = 0
        else:
            rc = run_dag(settings, period, ns.allow_open_period, holder.token if holder else "", run_log)
    if rc == 0:
        from mhsds_pipeline.run_summary import summary_lines

        print()
        print("\n".join(summary_lines(settings, period, None if ns.no_airflow else run_log)))
    return rc


def cmd_generate(ns: argparse.Namespace) -> int:
    if ns.providers is not None:
        return cmd_generate_providers(ns)
    from mhsds_pipeline.synthetic.generator import generate

    settings = load_settings()
    url = ns.url or settings.source_url
    end = ns.end_period or str(ReportingPeriod.latest_complete())
    print(f"Generating synthetic EPR into {redact_url(url)} ...")
    generate(
        url,
        scale=ns.scale,
        seed=ns.seed,
        end_period=end,
        months=ns.months or 12,
        out_dir=Path(ns.out_dir or settings.epr_dir),
    )
    return 0


def cmd_generate_providers(ns: argparse.Namespace) -> int:
    """``mhsds generate --providers N``: N providers' submission packages (system view, #15)."""
    from mhsds_pipeline.synthetic.provider_packages import generate_providers

    if ns.url:
        print("--url builds one trust's EPR; --providers builds each provider's own", file=sys.stderr)
        return 2
    period = ns.period or ns.end_period
    out_dir = Path(ns.out_dir) if ns.out_dir else load_settings().data_dir / "system" / "packages"
    try:
        generate_providers(
            out_dir,
            providers=ns.providers,
            period=period,
            total_scale=ns.total_scale,
            seed=ns.seed,
            months=ns.months or 1,
            workers=ns.workers,
            keep_work=ns.keep_work,
        )
    except ValueError as exc:
        print(f"mhsds generate: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_system(ns: argparse.Namespace) -> int:
    """The system view for one month, in-process: every provider's package in the inbox, then the
    combined, disclosure-controlled outputs (what the mhsds_system DAG runs)."""
    from mhsds_pipeline.system.flow import run_system_month, system_dirs

    inbox, out, work = system_dirs()
    inbox = Path(ns.inbox) if ns.inbox else inbox
    out = Path(ns.output) if ns.output else out
    work = Path(ns.work) if ns.work else work
    period = str(ReportingPeriod.resolve(ns.period).require_ended())
    from mhsds_pipeline.system.sources import PackageError

    run_month = run_system_month
    if ns.engine == "spark":  # the session MHSDS_SPARK_MASTER names (local[2] by default)
        from mhsds_pipeline.system.spark_month import run_system_month_spark as run_month

    print(f"MHSDS system {period}: packages from {inbox / period} (on {ns.engine})")
    try:
        result = run_month(inbox, period, out, work, run_id=ns.run_id or "cli")
    except (PackageError, FileNotFoundError) as exc:  # the inbox's fault: say what, publish nothing
        print(f"error: {exc}; nothing was published for {period}", file=sys.stderr)
        return 2
    print(
        f"MHSDS system {period}: {result['providers']} providers, {result['icbs']} ICBs, "
        f"{result['files']} files -> {out / period} ({result['version']})"
    )
    return 0


def cmd_step(ns: argparse.Namespace) -> int:
    settings = load_settings()
    period = str(ReportingPeriod.resolve(ns.period).require_ended(allow_open=ns.allow_open_period))
    if ns.step == "extract":  # reads the source only
        return _cmd_step(ns, period)
    with warehouse_lock(settings, ns.run_id or "cli", period=period, step=ns.step, wait_seconds=0):
        return _cmd_step(ns, period)


def _cmd_step(ns: argparse.Namespace, period: str) -> int:
    from mhsds_pipeline import pipeline

    if ns.step == "extract":
        result = pipeline.extract(period)
    elif ns.step == "load-raw":
        result = pipeline.load_raw(period)
    elif ns.step == "validate-raw":
        result = pipeline.validate_raw(period, ns.run_id or "cli")
    elif ns.step == "quality":
        result = pipeline.quality(period, ns.run_id or "cli")
    elif ns.step == "transform":
        landing = load_settings().landing_dir(period) / "_extract.json"
        result = pipeline.transform(period, json.loads(landing.read_text())["source_watermark"])
    else:
        result = pipeline.publish(period, ns.run_id or f"cli__{uuid.uuid4().hex[:12]}")
    print(json.dumps(result, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    from mhsds_pipeline.settings import read_settings

    try:
        level = read_settings().log_level
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 4
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="mhsds", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="build the source if absent and run the mhsds_monthly DAG for a period")
    p.add_argument("--period", default="", help="YYYY-MM; default: the latest complete month")
    p.add_argument("--scale", type=float, default=1.0, help="synthetic source scale (1 = one trust-month)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--months", type=int, default=12, help="months of synthetic history to generate")
    p.add_argument("--no-airflow", action="store_true", help="run the steps in-process, without Airflow")
    p.add_argument("--run-id", default=None)
    p.add_argument(
        "--allow-open-period",
        action="store_true",
        help="rebuild a month that has not ended (for inspection: never packaged, not sent to finance)",
    )
    p.set_defaults(func=cmd_run)

    g = sub.add_parser("generate", help="(re)build the synthetic clinical source")
    g.add_argument("--url", default=None, help="SQLAlchemy URL; default: MHSDS_SOURCE_URL / embedded SQLite")
    g.add_argument("--scale", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument(
        "--months", type=int, default=None, help="months of history (default 12; 1 with --providers)"
    )
    g.add_argument("--end-period", default=None)
    g.add_argument(
        "--out-dir", default=None, help="with --providers: where packages go (default data/system/packages)"
    )
    g.add_argument(
        "--providers",
        type=int,
        default=None,
        help="build N synthetic providers' submission packages (<out-dir>/<YYYY-MM>/<ODS>/) instead of one EPR",
    )
    g.add_argument(
        "--total-scale",
        type=float,
        default=1.0,
        help="with --providers: the providers' scales add up to this",
    )
    g.add_argument(
        "--period",
        default=None,
        help="with --providers: the reporting period YYYY-MM (default latest complete)",
    )
    g.add_argument(
        "--workers", type=int, default=1, choices=(1, 2), help="with --providers: worker processes"
    )
    g.add_argument(
        "--keep-work", action="store_true", help="with --providers: keep each provider's EPR and warehouse"
    )
    g.set_defaults(func=cmd_generate)

    y = sub.add_parser(
        "system", help="validate and measure every provider's package for a period (system view)"
    )
    y.add_argument("--period", default="", help="YYYY-MM; default: the latest complete month")
    y.add_argument(
        "--inbox", default=None, help="providers.csv + <YYYY-MM>/<ODS>/ (default MHSDS_SYSTEM_INBOX)"
    )
    y.add_argument(
        "--output", default=None, help="where the month is published (default MHSDS_SYSTEM_OUTPUT)"
    )
    y.add_argument("--work", default=None, help="per-provider DuckDB files (default MHSDS_SYSTEM_WORK)")
    y.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default="duckdb",
        help="duckdb: a file per provider (default); spark: the session MHSDS_SPARK_MASTER names",
    )
    y.add_argument("--run-id", default=None)
    y.set_defaults(func=cmd_system)

    s = sub.add_parser("step", help="run one pipeline step for a period (debugging)")
    s.add_argument("step", choices=["extract", "load-raw", "validate-raw", "transform", "quality", "publish"])
    s.add_argument("--period", default="")
    s.add_argument("--run-id", default=None)
    s.add_argument("--allow-open-period", action="store_true", help="a month that has not ended (inspection)")
    s.set_defaults(func=cmd_step)

    from mhsds_pipeline.finance import add_parser as add_mhis_parser
    from mhsds_pipeline.submission import add_parser as add_package_parser

    add_package_parser(sub)
    add_mhis_parser(sub)

    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except PeriodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WarehouseBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
