"""Planted defects in the order of dates: referrals, spells and ward stays that end before they
start (each built inside one month of the extract scope, at least a day after its start), and
contacts keyed after the period they took place in.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.synthetic import codes, trust
from mhsds_pipeline.synthetic.activity import ActivityModel
from mhsds_pipeline.synthetic.defects_rules import DefectLog, DefectRates, each_month, how_many, pick
from mhsds_pipeline.synthetic.frames import (
    DAY,
    HOUR,
    NAT_D,
    Frame,
    choice,
    concat,
    month_start,
    uniform_seconds,
)
from mhsds_pipeline.synthetic.scope import Scope
from mhsds_pipeline.synthetic.spine import Spine


def _in_scope_referrals(scope: Scope, spine: Spine, k: int) -> np.ndarray:
    """Rows of clean, activity-bearing referrals of existing patients extracted in month k."""
    ref = spine.referrals
    mask = scope.referrals(ref)
    known = np.isin(ref["patient_id"], spine.patients["patient_id"])
    return np.flatnonzero(((mask >> np.uint64(k)) & np.uint64(1)).astype(bool) & known & ref["_activity"])


def _new_referrals(
    spine: Spine,
    src_rows: np.ndarray,
    received: np.ndarray,
    discharged: np.ndarray,
    service: np.ndarray,
    team: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Append referrals for the patients of ``src_rows``; returns their new row numbers."""
    ref = spine.referrals
    n = len(src_rows)
    first = spine.next_ids["referral_id"]
    spine.next_ids["referral_id"] = first + n
    now = spine.window.now
    sources = np.empty(n, dtype="U2")
    reasons = np.empty(n, dtype="U2")
    priorities = np.empty(n, dtype="U2")
    for i, si in enumerate(service):
        svc = trust.SERVICES[si]
        sources[i] = choice(rng, svc.sources, 1)[0]
        reasons[i] = choice(rng, svc.reasons, 1)[0]
        priorities[i] = choice(rng, svc.priorities, 1)[0]
    new: Frame = {
        "referral_id": np.arange(first, first + n, dtype=np.int64),
        "patient_id": ref["patient_id"][src_rows],
        "team_id": team.astype(np.int32),
        "received_at": received,
        "source_of_referral": sources,
        "primary_reason": reasons,
        "priority": priorities,
        "commissioner_code": np.full(n, trust.COMMISSIONER_HOME),
        "discharged_at": discharged,
        "rejected_on": np.full(n, NAT_D),
        "reject_reason": np.full(n, ""),
        "closure_reason": choice(rng, codes.REFERRAL_CLOSURE_REASONS, n),
        "updated_at": np.minimum(np.maximum(received, discharged) + HOUR, now - np.timedelta64(1, "s")),
        "_service": service.astype(np.int16),
        "_activity": np.zeros(n, dtype=bool),
        "_dob": ref["_dob"][src_rows],
    }
    base = len(ref["referral_id"])
    spine.referrals = concat([ref, new])
    return np.arange(base, base + n)


def plant_date_order_referrals(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """Referrals discharged before they were received: a new referral (both dates in the month)
    for the patient of an in-scope referral, with its team and service."""
    for k, ms, me in each_month(spine.window):
        ref = spine.referrals
        new = int(((ref["received_at"] >= ms) & (ref["received_at"] < me)).sum())
        src = pick(rng, rates, "DATE_ORDER_REFERRAL", new, _in_scope_referrals(scope, spine, k))
        n = len(src)
        if not n:
            continue
        received = uniform_seconds(rng, np.full(n, ms + 2 * DAY), np.full(n, me))
        gap = np.minimum(2 * DAY, received - ms).astype(np.int64)
        back = (HOUR.astype(np.int64) + rng.random(n) * (gap - HOUR.astype(np.int64))).astype(np.int64)
        discharged = received - back.astype("timedelta64[s]")
        rows = _new_referrals(
            spine, src, received, discharged, ref["_service"][src], ref["team_id"][src], rng
        )
        log.add("DATE_ORDER_REFERRAL", spine.referrals["referral_id"][rows])


def plant_date_order_spells(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """Spells discharged before admission, each on a new inpatient referral (of the service of
    the source referral's patient class) for the patient of an in-scope referral."""
    team_map = trust.team_for_locality()
    by_class = {trust.CLASS_CYP: "IP_CYP", trust.CLASS_OLDER: "IP_OLDER", trust.CLASS_ADULT: "IP_ACUTE"}
    svc_class = np.array([s.patient_class for s in trust.SERVICES])
    for k, ms, me in each_month(spine.window):
        adm = spine.admissions
        in_scope = int(((scope.admissions(adm, spine.referrals) >> np.uint64(k)) & np.uint64(1)).sum())
        src = pick(rng, rates, "DATE_ORDER_SPELL", in_scope, _in_scope_referrals(scope, spine, k))
        n = len(src)
        if not n:
            continue
        ref = spine.referrals
        service = np.array([trust.SERVICE_INDEX[by_class[c]] for c in svc_class[ref["_service"][src]]])
        team = team_map[service, 0]
        received = uniform_seconds(rng, np.full(n, ms + 3 * DAY), np.full(n, me - 4 * DAY))
        admitted = received + (rng.integers(1, 12, n) * 3600).astype("timedelta64[s]")
        spell_end = admitted - (rng.integers(1, 48, n) * 3600).astype("timedelta64[s]")
        ref_end = admitted + (rng.integers(24, 72, n) * 3600).astype("timedelta64[s]")
        rows = _new_referrals(spine, src, received, ref_end, service, team, rng)
        first = spine.next_ids["admission_id"]
        spine.next_ids["admission_id"] = first + n
        ids = np.arange(first, first + n, dtype=np.int64)
        new: Frame = {
            "admission_id": ids,
            "referral_id": spine.referrals["referral_id"][rows],
            "decided_to_admit_at": received,
            "admitted_at": admitted,
            "admission_source": choice(rng, codes.ADMISSION_SOURCE, n),
            "admission_method": choice(rng, codes.ADMISSION_METHOD, n),
            "planned_discharge_on": np.full(n, NAT_D),
            "discharged_at": spell_end,
            "discharge_method": choice(rng, codes.DISCHARGE_METHOD, n),
            "discharge_destination": choice(rng, codes.DISCHARGE_DESTINATION, n),
        }
        spine.admissions = concat([adm, new])
        log.add("DATE_ORDER_SPELL", ids)


def plant_date_order_ward_stays(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """Ward stays ending before they start, added to in-scope spells that carry no defect, on
    the ward of the spell's first stay."""
    bad_spells = {key for rule, _t, key, _b in log.rows if rule == "DATE_ORDER_SPELL"}
    for k, ms, me in each_month(spine.window):
        adm = spine.admissions
        wm = spine.ward_movements
        amask = ((scope.admissions(adm, spine.referrals) >> np.uint64(k)) & np.uint64(1)).astype(bool)
        wmask = ((scope.ward_movements(wm, adm, spine.referrals) >> np.uint64(k)) & np.uint64(1)).astype(bool)
        end = np.where(np.isnat(adm["discharged_at"]), spine.window.now, adm["discharged_at"])
        lo = np.maximum(adm["admitted_at"], ms + 2 * DAY)
        hi = np.minimum(end, me)
        clean = ~np.isin(adm["admission_id"], np.array(sorted(bad_spells), dtype=np.int64))
        cand = np.flatnonzero(amask & clean & (hi - lo > HOUR))
        rows = pick(rng, rates, "DATE_ORDER_WARD_STAY", int(wmask.sum()), cand)
        n = len(rows)
        if not n:
            continue
        start = uniform_seconds(rng, lo[rows], hi[rows])
        gap = np.minimum(DAY, start - ms).astype(np.int64)
        back = (HOUR.astype(np.int64) + rng.random(n) * (gap - HOUR.astype(np.int64))).astype(np.int64)
        end_at = start - back.astype("timedelta64[s]")
        # The ward the patient was on at `start` (their first ward stay's ward as a fallback).
        first_stay = np.searchsorted(wm["admission_id"], adm["admission_id"][rows])
        ward = wm["ward_code"][np.minimum(first_stay, len(wm["ward_code"]) - 1)]
        ward_class = np.array([w.patient_class for w in trust.WARDS])[ward]
        first = spine.next_ids["ward_stay_id"]
        spine.next_ids["ward_stay_id"] = first + n
        ids = np.arange(first, first + n, dtype=np.int64)
        new: Frame = {
            "ward_stay_id": ids,
            "admission_id": adm["admission_id"][rows],
            "ward_code": ward.astype(np.int32),
            "start_at": start,
            "end_at": end_at,
            "patient_class": ward_class,
        }
        spine.ward_movements = concat([wm, new])
        log.add("DATE_ORDER_WARD_STAY", ids)


def late_contacts(
    rng: np.random.Generator, model: ActivityModel, n_ap: int, k: int, rates: DefectRates, log: DefectLog
) -> list[Frame]:
    """Contacts of the month or two before month ``k`` keyed (recorded) in month ``k``, on
    referrals still extracted in month ``k``; ``n_ap``: the month's contacts. Returns the new
    contacts, not yet added."""
    mi = model.window.first + k
    ms, me = month_start(mi), month_start(mi + 1)
    ref = model.ref
    extra: list[Frame] = []
    n = how_many(rng, rates, "CONTACT_OUTSIDE_PERIOD", n_ap, 10**9)
    lags = np.where(rng.random(n) < 0.8, 1, 2)
    for lag in (1, 2):
        m = int((lags == lag).sum())
        rows, lo, hi = model.open_intervals(mi - lag)
        # The referral must still be extracted in the month the contact is keyed in, so the late
        # contact breaks no other rule (e.g. its referral missing from that month's MHS101).
        still = model.end[rows] >= ms
        rows, lo, hi = rows[still], lo[still], hi[still]
        if not m or not len(rows):
            continue
        at = rng.integers(0, len(rows), m)
        r = rows[at]
        service = ref["_service"][r]
        start = model.contact_times(rng, lo[at], hi[at], model.community[service])
        late = model.make_contacts(
            rng,
            ref["referral_id"][r],
            ref["team_id"][r],
            service,
            start,
            np.zeros(m, dtype=bool),
            np.full(m, me),
        )
        late["recorded_at"] = uniform_seconds(rng, np.full(m, ms), np.full(m, me))
        late["_dob"] = ref["_dob"][r]
        late["appointment_id"] = model.assign_ids("appointment_id", m)
        log.add("CONTACT_OUTSIDE_PERIOD", late["appointment_id"], np.full(m, np.uint64(1) << np.uint64(k)))
        extra.append(late)
    return extra
