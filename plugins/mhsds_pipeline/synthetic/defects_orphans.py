"""Planted orphans: rows whose parent is missing from the EPR or not extracted with them.

A referral whose patient is gone; spells, ward stays, diagnoses, other-team rows and
referral-level assessments that belong to a month by their own dates while their parent is
missing or closed before that month; contacts of a referral that does not exist.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.synthetic import codes, trust
from mhsds_pipeline.synthetic.activity import ActivityModel, MonthActivity
from mhsds_pipeline.synthetic.defects_rules import (
    DefectLog,
    DefectRates,
    defective_keys,
    each_month,
    how_many,
    pick,
)
from mhsds_pipeline.synthetic.frames import (
    DAY,
    NAT_D,
    ORPHAN_ID_BASE,
    Frame,
    choice,
    concat,
    month_start,
    take,
    to_date,
    uniform_seconds,
)
from mhsds_pipeline.synthetic.scope import Scope
from mhsds_pipeline.synthetic.spine import Spine

#: Unused id ranges of the planted orphans' missing parents (ORPHAN_CONTACT uses +500,000).
_MISSING_PARENT_BASE = {
    "ORPHAN_SPELL": ORPHAN_ID_BASE + 600_000,
    "ORPHAN_WARD_STAY": ORPHAN_ID_BASE + 700_000,
    "ORPHAN_DIAGNOSIS": ORPHAN_ID_BASE + 800_000,
    "ORPHAN_REFERRAL_TEAM": ORPHAN_ID_BASE + 900_000,
    "ORPHAN_ASSESSMENT": ORPHAN_ID_BASE + 950_000,
    "ORPHAN_INDIRECT_ACTIVITY": ORPHAN_ID_BASE + 970_000,
}


def plant_orphan_referrals(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog
) -> None:
    """Referrals received in the month whose patient is missing: single-referral community
    patients with activity are deleted (with their GP registrations) and the referral points at
    an unused patient id."""
    ref = spine.referrals
    pid = ref["patient_id"]
    uniq, counts = np.unique(pid, return_counts=True)
    single = np.isin(pid, uniq[counts == 1])
    inpatient = np.array([s.ward_group is not None for s in trust.SERVICES])[ref["_service"]]
    chosen: list[np.ndarray] = []
    for _k, ms, me in each_month(spine.window):
        new = (ref["received_at"] >= ms) & (ref["received_at"] < me)
        cand = np.flatnonzero(new & single & ref["_activity"] & ~inpatient)
        chosen.append(pick(rng, rates, "ORPHAN_REFERRAL", int(new.sum()), cand))
    rows = np.sort(np.concatenate(chosen)).astype(np.int64)
    if not len(rows):
        return
    lost = ref["patient_id"][rows]
    ref["patient_id"][rows] = ORPHAN_ID_BASE + np.arange(1, len(rows) + 1)
    keep = ~np.isin(spine.patients["patient_id"], lost)
    spine.patients = take(spine.patients, np.flatnonzero(keep))
    gp_keep = ~np.isin(spine.gp_registrations["patient_id"], lost)
    spine.gp_registrations = take(spine.gp_registrations, np.flatnonzero(gp_keep))
    log.add("ORPHAN_REFERRAL", ref["referral_id"][rows])


def orphan_parents(
    rng: np.random.Generator, rule: str, n: int, closed_ids: np.ndarray, counter: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Parent ids for ``n`` orphans: alternately an id that exists nowhere in the EPR and an
    existing parent closed before the month (so not extracted with it); returns (ids, closed?).
    ``counter[rule]`` counts the missing ids used so far (they are never reused)."""
    closed = (np.arange(n) % 2 == 1) & (len(closed_ids) > 0)
    ids = np.empty(n, dtype=np.int64)
    missing = int((~closed).sum())
    used = counter.get(rule, 0)
    counter[rule] = used + missing
    first = _MISSING_PARENT_BASE[rule] + used + 1
    ids[~closed] = np.arange(first, first + missing)
    if closed.any():
        ids[closed] = rng.choice(closed_ids, size=int(closed.sum()), replace=len(closed_ids) < closed.sum())
    return ids, closed


def plant_orphans(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """Spells, ward stays, diagnoses and other-team rows that belong to one month by their own
    dates but whose parent is missing from the EPR or closed before that month. Each lies wholly
    inside its month, so it is an orphan in exactly one period. An orphan spell gets one ward
    stay, which the quality gate rejects by cascade (not a planted defect of its own)."""
    counter: dict[str, int] = {}
    bad_referrals = defective_keys(log, "referrals")
    bad_spells = defective_keys(log, "admissions")
    ward_rows = np.arange(len(spine.ward_movements["ward_stay_id"]))
    for k, ms, me in each_month(spine.window):
        ref, adm, wm = spine.referrals, spine.admissions, spine.ward_movements
        clean_ref = ~np.isin(ref["referral_id"], bad_referrals)
        closed_refs = np.flatnonzero(
            clean_ref
            & ~np.isnat(ref["discharged_at"])
            & (ref["discharged_at"] < ms)
            & np.isnat(ref["rejected_on"])
        )
        clean_adm = ~np.isin(adm["admission_id"], bad_spells)
        closed_adm = adm["admission_id"][
            clean_adm & ~np.isnat(adm["discharged_at"]) & (adm["discharged_at"] < ms)
        ]

        def bit_count(mask: np.ndarray, k: int = k) -> int:
            return int(((mask >> np.uint64(k)) & np.uint64(1)).sum())

        def in_month(n: int, ms=ms, me=me) -> np.ndarray:
            return uniform_seconds(rng, np.full(n, ms + DAY), np.full(n, me - 3 * DAY))

        # --- spells (each with one ward stay) -------------------------------------------------
        n = how_many(rng, rates, "ORPHAN_SPELL", bit_count(scope.admissions(adm)), 10**9)
        if n:
            parents, _ = orphan_parents(rng, "ORPHAN_SPELL", n, ref["referral_id"][closed_refs], counter)
            admitted = in_month(n)
            discharged = admitted + (rng.integers(2, 48, n) * 3600).astype("timedelta64[s]")
            first = spine.next_ids["admission_id"]
            spine.next_ids["admission_id"] = first + n
            ids = np.arange(first, first + n, dtype=np.int64)
            spine.admissions = concat(
                [
                    adm,
                    {
                        "admission_id": ids,
                        "referral_id": parents,
                        "decided_to_admit_at": admitted
                        - (rng.integers(1, 12, n) * 3600).astype("timedelta64[s]"),
                        "admitted_at": admitted,
                        "admission_source": choice(rng, codes.ADMISSION_SOURCE, n),
                        "admission_method": choice(rng, codes.ADMISSION_METHOD, n),
                        "planned_discharge_on": np.full(n, NAT_D),
                        "discharged_at": discharged,
                        "discharge_method": choice(rng, codes.DISCHARGE_METHOD, n),
                        "discharge_destination": choice(rng, codes.DISCHARGE_DESTINATION, n),
                    },
                ]
            )
            log.add("ORPHAN_SPELL", ids)
            spine.ward_movements = _add_ward_stays(rng, spine, ids, admitted, discharged, ward_rows)

        # --- ward stays -----------------------------------------------------------------------
        wm = spine.ward_movements
        n = how_many(rng, rates, "ORPHAN_WARD_STAY", bit_count(scope.ward_movements(wm)), 10**9)
        if n:
            parents, _ = orphan_parents(rng, "ORPHAN_WARD_STAY", n, closed_adm, counter)
            start = in_month(n)
            end = start + (rng.integers(2, 48, n) * 3600).astype("timedelta64[s]")
            before = len(spine.ward_movements["ward_stay_id"])
            spine.ward_movements = _add_ward_stays(rng, spine, parents, start, end, ward_rows)
            log.add("ORPHAN_WARD_STAY", spine.ward_movements["ward_stay_id"][before:])

        # --- diagnoses ------------------------------------------------------------------------
        dx = spine.diagnoses
        n = how_many(rng, rates, "ORPHAN_DIAGNOSIS", bit_count(scope.diagnoses(dx, ref)), 10**9)
        icd = dx["scheme"] == "02"
        if n and icd.any():
            undiagnosed = ref["referral_id"][closed_refs]  # one primary diagnosis per referral
            undiagnosed = undiagnosed[~np.isin(undiagnosed, dx["referral_id"])]
            parents, _ = orphan_parents(rng, "ORPHAN_DIAGNOSIS", n, undiagnosed, counter)
            first = int(dx["diagnosis_id"].max(initial=0)) + 1
            ids = np.arange(first, first + n, dtype=np.int64)
            spine.diagnoses = concat(
                [
                    dx,
                    {
                        "diagnosis_id": ids,
                        "referral_id": parents,
                        "scheme": np.full(n, "02"),
                        "code": rng.choice(dx["code"][icd], size=n),
                        "rank": np.full(n, "P"),
                        "diagnosed_at": in_month(n),
                    },
                ]
            )
            log.add("ORPHAN_DIAGNOSIS", ids)

        # --- other teams (MHS102) -------------------------------------------------------------
        rt = spine.referral_teams
        n = how_many(rng, rates, "ORPHAN_REFERRAL_TEAM", bit_count(scope.referral_teams(rt)), 10**9)
        if n:
            parents, closed = orphan_parents(
                rng, "ORPHAN_REFERRAL_TEAM", n, ref["referral_id"][closed_refs], counter
            )
            # A closed referral's own (primary) team is never one of its other teams: no duplicate
            # (referral, team) pair; a missing referral gets any community team.
            own_team = ref["team_id"][
                np.searchsorted(ref["referral_id"], parents).clip(0, len(ref["team_id"]) - 1)
            ]
            community = np.array(
                [ti for ti, t in enumerate(trust.TEAMS) if trust.SERVICES[t.service].community]
            )
            team = np.where(closed, own_team, community[rng.integers(0, len(community), n)])
            assigned = to_date(in_month(n))
            closed_on = assigned + rng.integers(0, 2, n).astype("timedelta64[D]")
            before = len(rt["referral_id"])
            spine.referral_teams = concat(
                [
                    rt,
                    {
                        "referral_id": parents,
                        "team_id": team.astype(rt["team_id"].dtype),
                        "assigned_on": assigned,
                        "closed_on": closed_on,
                        "closure_reason": choice(rng, codes.REFERRAL_CLOSURE_REASONS, n),
                        "rejected_on": np.full(n, NAT_D),
                        "reject_reason": np.full(n, ""),
                    },
                ]
            )
            log.add("ORPHAN_REFERRAL_TEAM", np.arange(before, before + n, dtype=np.int64))


def _add_ward_stays(
    rng: np.random.Generator,
    spine: Spine,
    admission_ids: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    ward_rows: np.ndarray,
) -> Frame:
    """Ward stays for the given spells, on the ward (and class) of random existing stays."""
    wm = spine.ward_movements
    n = len(admission_ids)
    src = rng.choice(ward_rows, size=n)
    first = spine.next_ids["ward_stay_id"]
    spine.next_ids["ward_stay_id"] = first + n
    new: Frame = {
        "ward_stay_id": np.arange(first, first + n, dtype=np.int64),
        "admission_id": admission_ids.astype(wm["admission_id"].dtype),
        "ward_code": wm["ward_code"][src],
        "start_at": start,
        "end_at": end,
        "patient_class": wm["patient_class"][src],
    }
    return concat([wm, new])


def plant_orphan_assessments(
    rng: np.random.Generator,
    model: ActivityModel,
    month: MonthActivity,
    k: int,
    rates: DefectRates,
    log: DefectLog,
) -> None:
    """Referral-level assessments in month ``k`` of a referral missing from the EPR or closed
    before the month, added to the month's assessments."""
    mi = model.window.first + k
    ms, me = month_start(mi), month_start(mi + 1)
    asm = month.assessments
    n_as = len(asm["assessment_id"])
    n = how_many(rng, rates, "ORPHAN_ASSESSMENT", n_as, 10**9)
    if not n:
        return
    ref = model.ref
    closed = np.flatnonzero(~np.isnat(ref["discharged_at"]) & (ref["discharged_at"] < ms) & ref["_activity"])
    counter = {"ORPHAN_ASSESSMENT": model.next_ids.get("orphan_assessment_parent", 0)}
    parents, is_closed = orphan_parents(rng, "ORPHAN_ASSESSMENT", n, ref["referral_id"][closed], counter)
    model.next_ids["orphan_assessment_parent"] = counter["ORPHAN_ASSESSMENT"]
    when = uniform_seconds(rng, np.full(n, ms + DAY), np.full(n, me - DAY))
    pos = np.searchsorted(ref["referral_id"], parents).clip(0, len(ref["referral_id"]) - 1)
    dob = np.where(is_closed, ref["_dob"][pos], to_date(when) - np.timedelta64(40 * 365, "D"))
    tool, score = model._tools_for_age(rng, (to_date(when) - dob) / np.timedelta64(1, "D") / 365.25)
    orphan_as = {
        "assessment_id": model.assign_ids("assessment_id", n),
        "referral_id": parents,
        "intervention_id": np.full(n, -1, dtype=np.int64),
        "tool_snomed": model.tool_ids[tool],
        "score": score.astype("U10"),
        "completed_at": when,
        "clinician_id": rng.integers(1, 30, n).astype(np.int64) * 100 + rng.integers(1, 31, n),
        "_tool": tool,
    }
    month.assessments = concat([asm, {c: orphan_as[c].astype(asm[c].dtype) for c in asm}])
    log.add("ORPHAN_ASSESSMENT", orphan_as["assessment_id"])


def orphan_contacts(
    rng: np.random.Generator, model: ActivityModel, n_ap: int, k: int, rates: DefectRates, log: DefectLog
) -> list[Frame]:
    """Contacts in month ``k`` with community teams on referrals that do not exist; ``n_ap``: the
    month's contacts. Returns the new contacts, not yet added."""
    mi = model.window.first + k
    ms, me = month_start(mi), month_start(mi + 1)
    n = how_many(rng, rates, "ORPHAN_CONTACT", n_ap, 10**9)
    if not n:
        return []
    community_teams = np.array(
        [ti for ti, t in enumerate(trust.TEAMS) if trust.SERVICES[t.service].community]
    )
    team = community_teams[rng.integers(0, len(community_teams), n)]
    service = np.array([trust.TEAMS[t].service for t in team])
    start = model.contact_times(rng, np.full(n, ms), np.full(n, me), np.ones(n, dtype=bool))
    orphan_ref = ORPHAN_ID_BASE + 500_000 + model.next_ids.setdefault("orphan_referral", 1) + np.arange(n)
    model.next_ids["orphan_referral"] += n
    orphan = model.make_contacts(
        rng, orphan_ref, team, service, start, np.zeros(n, dtype=bool), np.full(n, me)
    )
    orphan["appointment_id"] = model.assign_ids("appointment_id", n)
    log.add("ORPHAN_CONTACT", orphan["appointment_id"])
    return [orphan]
