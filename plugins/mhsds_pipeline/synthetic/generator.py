"""Deterministic synthetic clinical system (the "EPR") for the MHSDS pipeline.

``generate()`` (re)creates the EPR tables of the source contract (``mhsds_pipeline.source.schema``)
at a SQLite or PostgreSQL URL and fills them with a trust's worth of synthetic mental-health
activity for ``months`` reporting periods ending at ``end_period`` (scale 1 = one trust-month
of ~31,000 care contacts), with the data-quality defects of docs/source_contract.md planted at
known rows. Beside the database it writes, into ``out_dir``:

* ``ground_truth.csv`` - one row per planted defect per reporting period it is extracted in;
* ``expected_keys.parquet`` - the EPR key of every row each MHSDS table must hold per period,
  computed from the in-memory model by an implementation of the extract scope independent of
  the extract SQL (``scope.py``);
* ``generation_summary.json`` - parameters, row counts, defect counts and timings.

Same seed, scale, months and end period => identical tables, ground truth and expected keys.
All data are synthetic: NHS numbers come only from the 999 test range; names, ids, practices
and postcodes are invented.

CLI::

    python -m mhsds_pipeline.synthetic.generator --url sqlite:///data/epr/epr.sqlite --scale 1 \
        --seed 42 --end-period 2026-10 --months 12 --out-dir data/epr
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.engine import make_url

from mhsds_pipeline.synthetic import trust
from mhsds_pipeline.synthetic.activity import ActivityModel
from mhsds_pipeline.synthetic.defects import (
    EPR_KEY,
    RULES,
    DefectLog,
    DefectRates,
    plant_indirect_defects,
    plant_month_defects,
    plant_spine_defects,
)
from mhsds_pipeline.synthetic.frames import NAT_D, Frame, format_ids
from mhsds_pipeline.synthetic.indirect import IndirectModel
from mhsds_pipeline.synthetic.loader import Loader
from mhsds_pipeline.synthetic.scope import MAX_MONTHS, Scope, lookup, or_by_key
from mhsds_pipeline.synthetic.spine import Spine, Window, build_spine
from mhsds_pipeline.synthetic.v6_tables import V6Generator, ward_code_masks

__all__ = ["DefectRates", "GenerationSummary", "generate", "main"]

log = logging.getLogger(__name__)

GROUND_TRUTH_COLUMNS = ("defect_id", "rule", "epr_table", "epr_key", "mhsds_table", "column", "period")
EXPECTED_KEYS_SCHEMA = pa.schema(
    [pa.field("period", pa.string()), pa.field("mhsds_table", pa.string()), pa.field("epr_key", pa.string())]
)
_TEAM_IDS = np.array([t.team_id for t in trust.TEAMS])


@dataclass
class GenerationSummary:
    seed: int
    scale: float
    months: int
    first_period: str
    end_period: str
    periods: list[str]
    source: str
    out_dir: str
    row_counts: dict[str, int]
    defects: dict[str, int]  # planted defects per rule
    defect_period_rows: dict[str, int]  # ground_truth.csv rows per rule
    defect_rates: dict[str, float | int]
    expected_key_rows: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _redact(url: str) -> str:
    from mhsds_pipeline.config import redact_url

    return redact_url(url)


# ---------------------------------------------------------------------------------------------
# Reference tables
# ---------------------------------------------------------------------------------------------


def _teams() -> Frame:
    n = len(trust.TEAMS)
    svc = [trust.SERVICES[t.service] for t in trust.TEAMS]
    return {
        "team_id": np.arange(n, dtype=np.int32),
        "team_name": np.array([t.name for t in trust.TEAMS]),
        "service_line": np.array([s.service_line for s in svc]),
        "team_type_code": np.array([s.team_type for s in svc]),
        "age_group": np.array([s.age_group for s in svc]),
        "active_from": np.full(n, np.datetime64("2015-04-01", "D")),
        "active_to": np.full(n, NAT_D),
    }


def _wards() -> Frame:
    w = trust.WARDS
    return {
        "ward_code": np.arange(len(w), dtype=np.int32),
        "ward_name": np.array([x.name for x in w]),
        "site_code": np.array([x.site_code for x in w]),
        "patient_class": np.array([x.patient_class for x in w]),
        "beds": np.array([x.beds for x in w], dtype=np.int64),
    }


# ---------------------------------------------------------------------------------------------
# Activity kept for the scope computation (ids and dates only, not whole rows)
# ---------------------------------------------------------------------------------------------


@dataclass
class ActivityKeys:
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(v)

    def get(self, name: str, dtype) -> np.ndarray:
        parts = self.parts.get(name)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def _bits(mask: np.ndarray, k: int) -> np.ndarray:
    return ((mask >> np.uint64(k)) & np.uint64(1)).astype(bool)


def _join(*parts: np.ndarray) -> np.ndarray:
    out = parts[0]
    for p in parts[1:]:
        out = np.strings.add(np.strings.add(out, "|"), p)
    return out


def _date_text(d: np.ndarray) -> np.ndarray:
    return np.where(np.isnat(d), "", np.datetime_as_string(d, unit="D"))


@dataclass
class ScopeResult:
    tables: list[
        tuple[str, np.ndarray, Callable[[np.ndarray], np.ndarray]]
    ]  # (table, row masks, rows -> keys)
    by_table: dict[str, tuple[np.ndarray, np.ndarray]]  # EPR table -> (sorted int keys, OR mask)
    assessment_is_activity: tuple[np.ndarray, np.ndarray]  # (assessment ids, activity-level flag)
    diagnosis_is_secondary: tuple[np.ndarray, np.ndarray]  # (sorted diagnosis ids, rank S flag)
    #: EPR table -> int keys of the defect log -> ground-truth epr_key text (default: EPR_KEY ids)
    key_text: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)


def _scope(spine: Spine, acts: ActivityKeys) -> ScopeResult:
    window = spine.window
    sc = Scope(window)
    ref, pat, gp = spine.referrals, spine.patients, spine.gp_registrations
    rt, adm, wm, dx = spine.referral_teams, spine.admissions, spine.ward_movements, spine.diagnoses
    ref_mask = sc.referrals(ref)
    pat_mask = sc.patients(pat, ref, ref_mask)
    gp_mask = sc.gp_registrations(gp, pat, pat_mask)
    rt_mask = sc.referral_teams(rt)
    adm_mask = sc.admissions(adm)
    wm_mask = sc.ward_movements(wm)
    dx_mask = sc.diagnoses(dx, ref)
    app_id = acts.get("app_id", np.int64)
    app_mask = sc.appointments(
        acts.get("app_start", "datetime64[s]"), acts.get("app_recorded", "datetime64[s]")
    )
    ia_id = acts.get("ia_id", np.int64)
    ia_mask = sc.indirect_activities(
        acts.get("ia_start", "datetime64[s]"), acts.get("ia_recorded", "datetime64[s]")
    )
    iv_id = acts.get("iv_id", np.int64)
    iv_mask = sc.interventions(acts.get("iv_app", np.int64), app_id, app_mask)
    as_id = acts.get("as_id", np.int64)
    as_iv = acts.get("as_iv", np.int64)
    as_mask = sc.assessments(
        acts.get("as_ref", np.int64), as_iv, acts.get("as_completed", "datetime64[s]"), iv_id, iv_mask, ref
    )
    all_months = np.uint64((1 << window.months) - 1) if window.months < 64 else np.uint64(2**64 - 1)
    team_mask = np.full(len(trust.TEAMS), all_months, dtype=np.uint64)
    primary = dx["rank"] == "P"
    activity = as_iv >= 0

    def ids(col, values):
        return lambda rows: format_ids(col, values[rows])

    tables = [
        ("mhs001_mpi", pat_mask, ids("patient_id", pat["patient_id"])),
        (
            "mhs002_gp",
            gp_mask,
            lambda rows: _join(
                format_ids("patient_id", gp["patient_id"][rows]),
                gp["practice_code"][rows],
                _date_text(gp["registered_on"][rows]),
            ),
        ),
        ("mhs101_referral", ref_mask, ids("referral_id", ref["referral_id"])),
        (
            "mhs102_other_service_type",
            rt_mask,
            lambda rows: _join(
                format_ids("referral_id", rt["referral_id"][rows]), _TEAM_IDS[rt["team_id"][rows]]
            ),
        ),
        ("mhs201_care_contact", app_mask, ids("appointment_id", app_id)),
        ("mhs202_care_activity", iv_mask, ids("intervention_id", iv_id)),
        ("mhs204_indirect_activity", ia_mask, ids("indirect_activity_id", ia_id)),
        ("mhs501_hosp_prov_spell", adm_mask, ids("admission_id", adm["admission_id"])),
        ("mhs502_ward_stay", wm_mask, ids("ward_stay_id", wm["ward_stay_id"])),
        (
            "mhs604_prim_diag",
            np.where(primary, dx_mask, np.uint64(0)),
            ids("diagnosis_id", dx["diagnosis_id"]),
        ),
        (
            "mhs605_sec_diag",
            np.where(~primary, dx_mask, np.uint64(0)),
            ids("diagnosis_id", dx["diagnosis_id"]),
        ),
        (
            "mhs606_coded_score_assessment_refer",
            np.where(~activity, as_mask, np.uint64(0)),
            ids("assessment_id", as_id),
        ),
        (
            "mhs607_coded_score_assessment_act",
            np.where(activity, as_mask, np.uint64(0)),
            ids("assessment_id", as_id),
        ),
        ("mhs902_service_team_details", team_mask, lambda rows: _TEAM_IDS[rows]),
    ]
    rt_key = next(fn for t, _m, fn in tables if t == "mhs102_other_service_type")  # referral|team
    by_table = {
        "patients": or_by_key(pat["patient_id"], pat_mask),
        "referral_teams": or_by_key(np.arange(len(rt_mask), dtype=np.int64), rt_mask),  # by row
        "diagnoses": or_by_key(dx["diagnosis_id"], dx_mask),
        "referrals": or_by_key(ref["referral_id"], ref_mask),
        "admissions": or_by_key(adm["admission_id"], adm_mask),
        "ward_movements": or_by_key(wm["ward_stay_id"], wm_mask),
        "appointments": or_by_key(app_id, app_mask),
        "interventions": or_by_key(iv_id, iv_mask),
        "indirect_activities": or_by_key(ia_id, ia_mask),
        "assessments": or_by_key(as_id, as_mask),
    }
    order = np.argsort(dx["diagnosis_id"], kind="stable")
    secondary = (dx["diagnosis_id"][order], ~primary[order])
    return ScopeResult(tables, by_table, (as_id, activity), secondary, {"referral_teams": rt_key})


def _write_expected_keys(path: Path, window: Window, result: ScopeResult) -> int:
    tmp = path.with_suffix(".parquet.tmp")
    total = 0
    with pq.ParquetWriter(tmp, EXPECTED_KEYS_SCHEMA, compression="zstd") as writer:
        for k, period in enumerate(window.periods):
            names, keys = [], []
            for table, mask, key_fn in result.tables:
                rows = np.flatnonzero(_bits(mask, k))
                names.append(np.full(len(rows), table))
                keys.append(np.sort(key_fn(rows).astype(str)))
            key = np.concatenate(keys)
            n = len(key)
            batch = pa.table(
                [pa.array(np.full(n, period)), pa.array(np.concatenate(names)), pa.array(key)],
                schema=EXPECTED_KEYS_SCHEMA,
            )
            writer.write_table(batch)
            total += n
    tmp.replace(path)
    return total


def _ground_truth(
    path: Path, window: Window, defects: DefectLog, result: ScopeResult, extra: list[tuple] = ()
) -> dict[str, int]:
    rule_order = {name: i for i, name in enumerate(RULES)}
    planted = sorted(set(defects.rows), key=lambda r: (rule_order[r[0]], r[2], r[3]))
    as_ids, as_activity = result.assessment_is_activity
    per_rule: dict[str, int] = {name: 0 for name in RULES}
    lines = []
    for n, (rule, table, key, only_bits) in enumerate(planted, start=1):
        keys, masks = result.by_table[table]
        mask = int(lookup(keys, masks, np.array([key], dtype=np.int64))[0])
        if only_bits:
            mask &= only_bits
        periods = [window.period(k) for k in range(window.months) if mask >> k & 1]
        if not periods:
            raise RuntimeError(f"planted {rule} on {table} {key} is in no extracted period (generator bug)")
        mhsds_table, column = RULES[rule].mhsds_table, RULES[rule].mhsds_column
        if table == "diagnoses":
            dx_ids, dx_secondary = result.diagnosis_is_secondary
            pos = int(np.searchsorted(dx_ids, key))
            if pos < len(dx_ids) and dx_ids[pos] == key and dx_secondary[pos]:
                mhsds_table, column = "mhs605_sec_diag", column.replace("PrimDiag", "SecDiag")
        if table == "assessments":
            pos = int(np.searchsorted(as_ids, key))
            activity = bool(as_activity[pos]) if pos < len(as_ids) and as_ids[pos] == key else True
            mhsds_table = (
                "mhs607_coded_score_assessment_act" if activity else "mhs606_coded_score_assessment_refer"
            )
        if table in result.key_text:
            epr_key = str(result.key_text[table](np.array([key]))[0])
        else:
            epr_key = str(format_ids(EPR_KEY[table], np.array([key]))[0])
        for period in periods:
            lines.append((f"D{n:06d}", rule, table, epr_key, mhsds_table, column, period))
            per_rule[rule] += 1
    # The generated v6 tables' defects (v6_tables.py): the rule is the NHS error code itself and
    # epr_key the MHSDS row key text; numbered on their own (V...) so the ids do not depend on
    # how many defects only a SQLite EPR can hold.
    for n, (rule, table, key, mhsds_table, column, periods) in enumerate(extra, start=1):
        for period in periods:
            lines.append((f"V{n:06d}", rule, table, key, mhsds_table, column, period))
            per_rule[rule] = per_rule.get(rule, 0) + 1
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(GROUND_TRUTH_COLUMNS)
        w.writerows(lines)
    tmp.replace(path)
    return per_rule


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def _resolve_period(end_period: str | None) -> str:
    from mhsds_pipeline.period import ReportingPeriod

    return str(ReportingPeriod.resolve(end_period))


def generate(
    url: str,
    *,
    scale: float = 1.0,
    seed: int = 42,
    end_period: str | None = None,
    months: int = 12,
    out_dir: Path,
    defect_rates: DefectRates | None = None,
    v6_tables: bool = True,
) -> GenerationSummary:
    """(Re)create the synthetic EPR at ``url`` and write the ground truth into ``out_dir``.

    ``end_period`` (``YYYY-MM``; default the latest complete month) is the last reporting period
    generated and ``months`` how many periods end there. ``defect_rates`` defaults to
    ``DefectRates()``; ``DefectRates.none()`` gives a clean source. ``v6_tables``: fill the
    47 tables generated from the v6 rules file too (``v6_tables.py``).
    """
    t0 = time.perf_counter()
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}, got {months}")
    end_period = _resolve_period(end_period)
    rates = defect_rates if defect_rates is not None else DefectRates()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    window = Window.ending(end_period, months)
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(timings.get(name, 0.0) + now - since, 3)
        return now

    t = time.perf_counter()
    spine = build_spine(seed, scale, window)
    defects = DefectLog()
    # An impossible date can only be stored by a dynamically typed (SQLite) EPR.
    sqlite = make_url(url).get_backend_name() == "sqlite"
    plant_spine_defects(spine, rates, seed, defects, malformed_cells=sqlite)
    t = lap("spine", t)

    loader = Loader(url)
    try:
        loader.reset()
        loader.write("teams", _teams())
        loader.write("wards", _wards())
        for name in (
            "patients",
            "gp_registrations",
            "referrals",
            "referral_teams",
            "admissions",
            "ward_movements",
            "diagnoses",
        ):
            loader.write(name, getattr(spine, name))
        t = lap("load", t)
        model = ActivityModel(spine, scale, seed)
        indirect = IndirectModel(model)
        acts = ActivityKeys()
        v6 = (
            V6Generator(spine, model, seed, defects, enabled_defects=any(rates.to_dict().values()))
            if v6_tables
            else None
        )  # fmt: skip
        for k in range(window.months):
            month = model.month(k)
            month = plant_month_defects(model, month, k, rates, seed, defects)
            ia = indirect.month(k)
            ia = plant_indirect_defects(
                np.random.default_rng([seed, 3, 7, k]), indirect, ia, k, rates, defects
            )
            t = lap("activity", t)
            loader.write("appointments", month.appointments)
            loader.write("interventions", month.interventions)
            loader.write("assessments", month.assessments)
            loader.write("indirect_activities", ia)
            if v6 is not None:
                v6.add_month(k, month, ia)
            ap, iv, asm = month.appointments, month.interventions, month.assessments
            acts.add(
                app_id=ap["appointment_id"],
                app_start=ap["start_at"],
                app_recorded=ap["recorded_at"],
                iv_id=iv["intervention_id"],
                iv_app=iv["appointment_id"],
                as_id=asm["assessment_id"],
                as_ref=asm["referral_id"],
                as_iv=asm["intervention_id"],
                as_completed=asm["completed_at"],
                ia_id=ia["indirect_activity_id"],
                ia_start=ia["start_at"],
                ia_recorded=ia["recorded_at"],
            )
            t = lap("load", t)
        if v6 is not None:
            v6.generate()
            for name, frame in v6.frames():
                loader.write(name, frame)
            t = lap("v6_tables", t)
        loader.finish()
        t = lap("index", t)
    except BaseException:
        loader.abort()
        raise

    result = _scope(spine, acts)
    v6_truth: list[tuple] = []
    if v6 is not None:
        masks = v6.masks(
            window, result.by_table, ward_code_masks(spine.ward_movements, result.by_table["ward_movements"])
        )
        for model_name, mask in masks.items():
            rids = v6.record_ids(model_name)
            result.tables.append((model_name, mask, lambda rows, rids=rids: rids[rows]))
        v6_truth = v6.ground_truth(masks, window)
    n_keys = _write_expected_keys(out_dir / "expected_keys.parquet", window, result)
    period_rows = _ground_truth(out_dir / "ground_truth.csv", window, defects, result, v6_truth)
    t = lap("outputs", t)

    summary = GenerationSummary(
        seed=seed,
        scale=scale,
        months=months,
        first_period=window.period(0),
        end_period=end_period,
        periods=window.periods,
        source=_redact(url),
        out_dir=str(out_dir),
        row_counts=dict(loader.rows),
        defects={rule: defects.count(rule) for rule in RULES}
        | {rule: sum(1 for d in v6_truth if d[0] == rule) for rule in sorted({d[0] for d in v6_truth})},
        defect_period_rows=period_rows,
        defect_rates=rates.to_dict(),
        expected_key_rows=n_keys,
        seconds=round(time.perf_counter() - t0, 3),
        timings=timings,
    )
    (out_dir / "generation_summary.json").write_text(
        json.dumps(summary.to_json(), indent=2, sort_keys=True) + "\n"
    )
    log.info(
        "generated %s periods %s..%s at scale %s in %.1f s: %s",
        _redact(url),
        window.period(0),
        end_period,
        scale,
        summary.seconds,
        summary.row_counts,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mhsds_pipeline.synthetic.generator", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--url", help="SQLAlchemy URL of the EPR (default: MHSDS_SOURCE_URL / data/epr/epr.sqlite)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1 = one trust-month (~31,000 contacts a month)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end-period", help="last reporting period YYYY-MM (default: latest complete month)")
    parser.add_argument(
        "--months", type=int, default=12, help="number of reporting periods ending at --end-period"
    )
    parser.add_argument("--out-dir", type=Path, help="where ground_truth.csv etc. go (default: data/epr)")
    parser.add_argument("--no-defects", action="store_true", help="plant no data-quality defects")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url, out_dir = args.url, args.out_dir
    if url is None or out_dir is None:
        from mhsds_pipeline.config import load_settings

        settings = load_settings()
        url = url or settings.source_url
        out_dir = out_dir or settings.epr_dir
    try:
        summary = generate(
            url,
            scale=args.scale,
            seed=args.seed,
            end_period=args.end_period,
            months=args.months,
            out_dir=out_dir,
            defect_rates=DefectRates.none() if args.no_defects else None,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(
        json.dumps(
            {"row_counts": summary.row_counts, "defects": summary.defects, "seconds": summary.seconds},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
