"""The rows hanging off the spine's referrals: inpatient spells and their ward stays
(MHS501/MHS502), other teams involved (MHS102) and diagnoses (MHS604/MHS605).

Called by :func:`mhsds_pipeline.synthetic.spine.build_spine`, each with its own random stream,
once the referrals exist.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.synthetic import codes, trust
from mhsds_pipeline.synthetic.frames import DAY, NAT_D, Frame, choice, days, to_date

_PARTNERS = {
    "ADULT_CMHT": ("IPS", "CRISIS", "ADULT_PCMH"),
    "ADULT_PCMH": ("ADULT_CMHT",),
    "ADULT_ED": ("ADULT_CMHT",),
    "EIP": ("IPS", "CRISIS"),
    "CAMHS_CORE": ("CAMHS_NEURO", "CAMHS_ED", "CAMHS_MHST"),
    "CAMHS_NEURO": ("CAMHS_CORE",),
    "CAMHS_MHST": ("CAMHS_CORE",),
    "CAMHS_ED": ("CAMHS_CORE",),
    "OLDER_CMHT": ("MEMORY",),
    "MEMORY": ("OLDER_CMHT",),
    "PERINATAL": ("ADULT_CMHT", "CRISIS"),
    "CRISIS": ("ADULT_CMHT",),
    "IPS": ("ADULT_CMHT",),
}


def build_other_teams(
    rng: np.random.Generator, ref: Frame, pat_locality: np.ndarray, team_map: np.ndarray, now: np.datetime64
) -> Frame:
    """Other teams involved in a referral (MHS102): a partner service's team joins some referrals
    open for at least two days, after an exponential delay, for a while (a few are rejected)."""
    service = ref["_service"]
    end = np.where(np.isnat(ref["discharged_at"]), now, ref["discharged_at"])
    span = end - ref["received_at"]
    eligible = ref["_activity"] & (span >= np.timedelta64(2, "D"))
    picks = rng.random(len(service))
    partner = np.full(len(service), -1)
    for code, partners in _PARTNERS.items():
        si = trust.SERVICE_INDEX[code]
        rows = np.flatnonzero(service == si)
        options = np.array([trust.SERVICE_INDEX[p] for p in partners])
        partner[rows] = options[rng.integers(0, len(options), len(rows))]
    # Another team joins after an exponential delay; joins that would fall after the referral
    # closed (or after the snapshot) never happened.
    delay = days(rng.exponential(45, len(service)))
    joins = ref["received_at"] + delay
    rows = np.flatnonzero(eligible & (partner >= 0) & (picks < 0.16) & (joins < end))
    n = len(rows)
    assigned = joins[rows]
    assigned_on = to_date(assigned)
    closed_on = assigned_on + rng.integers(14, 200, n).astype("timedelta64[D]")
    disch = ref["discharged_at"][rows]
    closed_on = np.where(~np.isnat(disch), np.minimum(closed_on, to_date(disch)), closed_on)
    closed_on = np.where(closed_on >= to_date(now), NAT_D, closed_on)
    rejected = rng.random(n) < 0.05
    rejected_on = np.where(rejected, assigned_on + rng.integers(0, 10, n).astype("timedelta64[D]"), NAT_D)
    rejected_on = np.where(rejected_on >= to_date(now), NAT_D, rejected_on)
    rejected = ~np.isnat(rejected_on)
    # A rejected team referral is also closed then (else it would stay in scope for ever).
    closed_on = np.where(rejected, rejected_on, closed_on)
    team = team_map[partner[rows], pat_locality[ref["patient_id"][rows]]]
    return {
        "referral_id": ref["referral_id"][rows],
        "team_id": team.astype(np.int32),
        "assigned_on": assigned_on,
        "closed_on": closed_on,
        "closure_reason": np.where(np.isnat(closed_on), "", choice(rng, codes.REFERRAL_CLOSURE_REASONS, n)),
        "rejected_on": rejected_on,
        "reject_reason": np.where(rejected, choice(rng, codes.REFERRAL_REJECT_REASONS, n), ""),
    }


def build_diagnoses(rng: np.random.Generator, ref: Frame, now: np.datetime64) -> Frame:
    """Primary (and some secondary) diagnoses of the referrals with activity, ICD-10 or SNOMED CT
    from each service's lists, made while the referral is open."""
    n = len(ref["referral_id"])
    end = np.where(np.isnat(ref["discharged_at"]), now, ref["discharged_at"])
    span_days = (end - ref["received_at"]) / DAY
    has = ref["_activity"] & (rng.random(n) < 0.6)
    rows = np.flatnonzero(has)
    m = len(rows)
    service = ref["_service"][rows]
    # Diagnosed after ~10 days on average, always while the referral is open.
    delay = np.minimum(rng.exponential(10, m), rng.random(m) * span_days[rows])
    when = ref["received_at"][rows] + days(delay)
    when = np.minimum(when, end[rows] - np.timedelta64(1, "s"))
    scheme = np.where(rng.random(m) < 0.15, "06", "02")
    pick = rng.random(m)
    pick2 = rng.random(m)
    code = np.empty(m, dtype="U18")
    code2 = np.empty(m, dtype="U18")
    for si, svc in enumerate(trust.SERVICES):
        for sch, options in (("02", svc.icd10), ("06", svc.snomed_dx)):
            sel = np.flatnonzero((service == si) & (scheme == sch))
            opts = np.array(options)
            a = (pick[sel] * len(opts)).astype(np.int64)
            code[sel] = opts[a]
            b = (a + 1 + (pick2[sel] * (len(opts) - 1)).astype(np.int64)) % len(opts)
            code2[sel] = opts[b]
    second = (rng.random(m) < 0.2) & (code2 != code)
    when2 = when + days(rng.random(m) * np.clip((end[rows] - when) / DAY, 0, 90))
    when2 = np.minimum(when2, end[rows] - np.timedelta64(1, "s"))
    when2 = np.maximum(when2, when)
    ref_id = np.concatenate([ref["referral_id"][rows], ref["referral_id"][rows][second]])
    out: Frame = {
        "referral_id": ref_id,
        "scheme": np.concatenate([scheme, scheme[second]]),
        "code": np.concatenate([code, code2[second]]),
        "rank": np.concatenate([np.full(m, "P"), np.full(second.sum(), "S")]),
        "diagnosed_at": np.concatenate([when, when2[second]]),
    }
    order = np.lexsort((out["rank"], ref_id))
    out = {k: v[order] for k, v in out.items()}
    out = {"diagnosis_id": np.arange(1, len(order) + 1, dtype=np.int64), **out}
    return out


def build_spells(
    rng: np.random.Generator, ref: Frame, admitted_all: np.ndarray, dob_by_pid: np.ndarray, now: np.datetime64
) -> tuple[Frame, Frame]:
    """Hospital provider spells of the inpatient referrals (``admitted_all`` not NaT) and their
    ward stays: 1-3 per spell, on wards of the service's ward group."""
    rows = np.flatnonzero(~np.isnat(admitted_all))
    n = len(rows)
    admitted = admitted_all[rows]
    discharged = ref["discharged_at"][rows]
    service = ref["_service"][rows]
    group = np.array([trust.WARD_GROUPS.index(trust.SERVICES[s].ward_group) for s in service])
    planned = np.where(
        rng.random(n) < 0.5, to_date(admitted) + rng.integers(7, 60, n).astype("timedelta64[D]"), NAT_D
    )
    dis = ~np.isnat(discharged)
    admissions: Frame = {
        "admission_id": np.arange(1, n + 1, dtype=np.int64),
        "referral_id": ref["referral_id"][rows],
        "decided_to_admit_at": ref["received_at"][rows],
        "admitted_at": admitted,
        "admission_source": choice(rng, codes.ADMISSION_SOURCE, n),
        "admission_method": choice(rng, codes.ADMISSION_METHOD, n),
        "planned_discharge_on": planned,
        "discharged_at": discharged,
        "discharge_method": np.where(dis, choice(rng, codes.DISCHARGE_METHOD, n), ""),
        "discharge_destination": np.where(dis, choice(rng, codes.DISCHARGE_DESTINATION, n), ""),
    }
    # Ward stays: 1-3 per spell, the spell cut at random points; a stay not ended by `now` is open.
    ward_group = np.array([trust.WARD_GROUPS.index(w.group) for w in trust.WARDS])
    beds = np.array([w.beds for w in trust.WARDS], dtype=float)
    k = rng.choice([1, 2, 3], size=n, p=[0.72, 0.2, 0.08])
    single_ward = np.array([np.sum(ward_group == g) for g in range(len(trust.WARD_GROUPS))]) == 1
    k = np.where(single_ward[group] & (group != trust.WARD_GROUPS.index("PICU")), 1, k)
    # Length used for cutting: the real stay, or for open spells the time so far.
    length_s = np.where(
        np.isnat(discharged), (now - admitted).astype(np.int64), (discharged - admitted).astype(np.int64)
    )
    seg_spell = np.repeat(np.arange(n), k)
    seg_pos = np.arange(len(seg_spell)) - np.repeat(np.cumsum(k) - k, k)
    cut = rng.random(len(seg_spell))
    cut[seg_pos == 0] = 0.0
    order = np.lexsort((cut, seg_spell))
    cut = cut[order]
    start = admitted[seg_spell] + (cut * length_s[seg_spell]).astype(np.int64).astype("timedelta64[s]")
    last = np.r_[seg_spell[1:] != seg_spell[:-1], True]
    end = np.empty(len(start), dtype="datetime64[s]")
    end[:-1] = start[1:]
    end[last] = discharged[seg_spell[last]]
    # Wards: first by beds within the group; transfers move to another ward of the pool.
    pools = []
    for g, name in enumerate(trust.WARD_GROUPS):
        pool = np.flatnonzero(ward_group == g)
        if name in ("ACUTE", "PICU"):
            pool = np.flatnonzero(
                (ward_group == trust.WARD_GROUPS.index("ACUTE"))
                | (ward_group == trust.WARD_GROUPS.index("PICU"))
            )
        pools.append(pool)
    ward = np.empty(len(start), dtype=np.int64)
    first = seg_pos == 0
    for g in range(len(trust.WARD_GROUPS)):
        home = np.flatnonzero(ward_group == g)
        sel = np.flatnonzero(first & (group[seg_spell] == g))
        ward[sel] = home[rng.choice(len(home), size=len(sel), p=beds[home] / beds[home].sum())]
    for pos in (1, 2):
        sel = np.flatnonzero(seg_pos == pos)
        for g in range(len(trust.WARD_GROUPS)):
            s = sel[group[seg_spell[sel]] == g]
            pool = pools[g]
            prev = ward[s - 1]
            prev_at = np.searchsorted(pool, prev)
            prev_at = np.where(pool[np.minimum(prev_at, len(pool) - 1)] == prev, prev_at, 0)
            ward[s] = pool[(prev_at + rng.integers(1, max(len(pool), 2), len(s))) % len(pool)]
    ward_class = np.array([w.patient_class for w in trust.WARDS])[ward]
    age_at_start = (
        (to_date(start) - dob_by_pid[ref["patient_id"][rows][seg_spell]]) / np.timedelta64(1, "D") / 365.25
    )
    ward_class = np.where((ward_class == "301") & (age_at_start < 13), "300", ward_class)
    keep = start < now
    wards: Frame = {
        "ward_stay_id": np.arange(1, keep.sum() + 1, dtype=np.int64),
        "admission_id": admissions["admission_id"][seg_spell[keep]],
        "ward_code": ward[keep].astype(np.int32),
        "start_at": start[keep],
        "end_at": end[keep],
        "patient_class": ward_class[keep],
    }
    return admissions, wards
