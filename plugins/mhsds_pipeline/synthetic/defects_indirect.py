"""Planted defects on indirect activity (MHS204IndirectActivity): one of each kind of v6 rule.

* INDIRECT_DATE_MISSING (Blank, MHS20407): no date recorded; the row is extracted with the month
  it was keyed in.
* INDIRECT_DURATION_FORMAT (Format, MHS20411): a duration of five digits (max n4).
* INDIRECT_PERSON_CONSULTED_INVALID (National Code, MHS20437, a warning): ``00``, a two-character
  value (so its an2 format holds) outside the code list.
* INDIRECT_SNOMED_CHECK_DIGIT (AV, MHS20431): the procedure's check digit changed.
* INDIRECT_OUTSIDE_PERIOD (AV_1, MHS20435): dated in the month or two before, keyed in this one,
  on a referral still extracted in this month (the ground truth names this month only).
* ORPHAN_INDIRECT_ACTIVITY (group rejection MHS20403): on a referral missing from the EPR or
  closed before the month.

Changed rows are taken from the month's clean rows, one defect each; added rows (late, orphan)
are keyed a few seconds past the minute, so their MHS204 key (referral, team, date, time) never
meets a clean row's. All draws come from the caller's own random stream.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.synthetic import trust
from mhsds_pipeline.synthetic.defects_orphans import orphan_parents
from mhsds_pipeline.synthetic.defects_rules import DefectLog, DefectRates, how_many, pick
from mhsds_pipeline.synthetic.frames import NAT_S, Frame, concat, month_start, uniform_seconds
from mhsds_pipeline.synthetic.indirect import IndirectModel

INVALID_PERSON_CONSULTED = "00"


def _wrong_check_digit(code: str, rng: np.random.Generator) -> str:
    return code[:-1] + str((int(code[-1]) + int(rng.integers(1, 10))) % 10)


def _off_the_minute(rng: np.random.Generator, start: np.ndarray) -> np.ndarray:
    return start + rng.integers(1, 60, len(start)).astype("timedelta64[s]")


def _change_rows(rng: np.random.Generator, ia: Frame, rates: DefectRates, log: DefectLog) -> None:
    n = len(ia["indirect_activity_id"])
    used = np.zeros(n, dtype=bool)
    rid = ia["referral_id"]
    uniq, counts = np.unique(rid, return_counts=True)
    single = np.isin(rid, uniq[counts == 1])  # a blank date keeps the row's key unique
    eligible = {
        "INDIRECT_DATE_MISSING": single,
        "INDIRECT_DURATION_FORMAT": np.ones(n, dtype=bool),
        "INDIRECT_PERSON_CONSULTED_INVALID": np.ones(n, dtype=bool),
        "INDIRECT_SNOMED_CHECK_DIGIT": ia["snomed_procedure"] != "",
    }
    for rule, ok in eligible.items():
        rows = np.sort(pick(rng, rates, rule, n, np.flatnonzero(ok & ~used)))
        if not len(rows):
            continue
        used[rows] = True
        if rule == "INDIRECT_DATE_MISSING":
            ia["start_at"][rows] = NAT_S
        elif rule == "INDIRECT_DURATION_FORMAT":
            ia["duration_minutes"][rows] = rng.integers(10_000, 100_000, len(rows))
        elif rule == "INDIRECT_PERSON_CONSULTED_INVALID":
            ia["person_consulted"][rows] = INVALID_PERSON_CONSULTED
        else:
            ia["snomed_procedure"][rows] = [_wrong_check_digit(c, rng) for c in ia["snomed_procedure"][rows]]
        log.add(rule, ia["indirect_activity_id"][rows])


def _late_rows(
    rng: np.random.Generator, im: IndirectModel, n_ia: int, k: int, rates: DefectRates, log: DefectLog
) -> list[Frame]:
    m = im.model
    mi = m.window.first + k
    ms, me = month_start(mi), month_start(mi + 1)
    n = how_many(rng, rates, "INDIRECT_OUTSIDE_PERIOD", n_ia, 10**9)
    lags = np.where(rng.random(n) < 0.8, 1, 2)
    out = []
    for lag in (1, 2):
        c = int((lags == lag).sum())
        rows, lo, hi = m.open_intervals(mi - lag)
        still = m.end[rows] >= ms  # the referral is still extracted in the month it is keyed in
        rows, lo, hi = rows[still], lo[still], hi[still]
        if not c or not len(rows):
            continue
        at = rng.integers(0, len(rows), c)
        start = m.contact_times(rng, lo[at], hi[at], np.ones(c, dtype=bool))
        start = np.minimum(_off_the_minute(rng, start), hi[at] - np.timedelta64(1, "s"))
        late = im.make_rows(rng, rows[at], start, np.full(c, me))
        late["recorded_at"] = uniform_seconds(rng, np.full(c, ms), np.full(c, me))
        late["indirect_activity_id"] = im.assign_ids(c)
        log.add(
            "INDIRECT_OUTSIDE_PERIOD", late["indirect_activity_id"], np.full(c, np.uint64(1) << np.uint64(k))
        )
        out.append(late)
    return out


def _orphan_rows(
    rng: np.random.Generator, im: IndirectModel, n_ia: int, k: int, rates: DefectRates, log: DefectLog
) -> list[Frame]:
    m = im.model
    mi = m.window.first + k
    ms, me = month_start(mi), month_start(mi + 1)
    n = how_many(rng, rates, "ORPHAN_INDIRECT_ACTIVITY", n_ia, 10**9)
    if not n:
        return []
    ref = m.ref
    closed = np.flatnonzero(~np.isnat(ref["discharged_at"]) & (ref["discharged_at"] < ms) & ref["_activity"])
    counter = {"ORPHAN_INDIRECT_ACTIVITY": im.orphan_parents_used}
    parents, _ = orphan_parents(rng, "ORPHAN_INDIRECT_ACTIVITY", n, ref["referral_id"][closed], counter)
    im.orphan_parents_used = counter["ORPHAN_INDIRECT_ACTIVITY"]
    # Rows made as if on some open referral of the month, then pointed at the orphan's parent.
    rows, _lo, _hi = m.open_intervals(mi)
    at = rows[rng.integers(0, len(rows), n)]
    start = _off_the_minute(rng, m.contact_times(rng, np.full(n, ms), np.full(n, me), np.ones(n, dtype=bool)))
    orphan = im.make_rows(rng, at, start, np.full(n, me))
    orphan["referral_id"] = parents
    community = np.array([ti for ti, t in enumerate(trust.TEAMS) if trust.SERVICES[t.service].community])
    orphan["team_id"] = community[rng.integers(0, len(community), n)].astype(np.int32)
    orphan["clinician_id"] = orphan["team_id"].astype(np.int64) * 100 + rng.integers(1, 31, n)
    orphan["indirect_activity_id"] = im.assign_ids(n)
    log.add("ORPHAN_INDIRECT_ACTIVITY", orphan["indirect_activity_id"])
    return [orphan]


def plant_indirect_defects(
    rng: np.random.Generator, im: IndirectModel, ia: Frame, k: int, rates: DefectRates, log: DefectLog
) -> Frame:
    """Month ``k``'s indirect activity ``ia`` with its defects planted (rows changed in place,
    late-keyed and orphan rows added); returns the month's rows."""
    n_ia = len(ia["indirect_activity_id"])
    _change_rows(rng, ia, rates, log)
    extra = _late_rows(rng, im, n_ia, k, rates, log) + _orphan_rows(rng, im, n_ia, k, rates, log)
    if not extra:
        return ia
    return concat([ia] + [{c: e[c].astype(ia[c].dtype) for c in ia} for e in extra])
