"""The slow-moving part of the synthetic EPR: patients, referrals, inpatient spells, diagnoses.

Referrals arrive per service as a Poisson process that starts years before the generated
window (so the referrals open in the first month have realistic ages: a CMHT referral may have
been open for years), each with a lognormal time to discharge. Only referrals still open at
the start of the window are kept: older ones could never be extracted. People are derived from
referrals: a share of new referrals belongs to someone already known to the trust in the same
age class (crisis line -> crisis team -> CMHT -> ward), which gives ~0.85 patients per
referral in a month. Inpatient services get a spell per referral, split into 1-3 ward stays;
those, the other teams involved and the diagnoses are built in ``referral_rows.py``.

Everything is vectorised numpy, driven by one ``numpy.random.Generator`` per component so that
the same seed, scale and window always give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mhsds_pipeline.synthetic import codes, trust
from mhsds_pipeline.synthetic.frames import (
    DAY,
    NAT_D,
    NAT_S,
    ORPHAN_ID_BASE,
    Frame,
    choice,
    days,
    month_start,
    to_date,
    uniform_seconds,
)
from mhsds_pipeline.synthetic.referral_rows import build_diagnoses, build_other_teams, build_spells

#: Longest history simulated before the window (months): referrals open longer than this are
#: treated as received this long ago.
MAX_HISTORY_MONTHS = 84
#: A linked referral picks its person among referrals of the same class received this recently.
#: Multiplier on the services' link_prob, calibrated so that a month's extract holds ~0.85
#: patients per referral (many linked referrals point at people whose earlier referral has closed).
LINK_SCALE = 1.9
LINK_LOOKBACK = np.timedelta64(120, "D").astype("timedelta64[s]")


@dataclass(frozen=True)
class Window:
    """The generated reporting periods: absolute month indexes ``first..last`` (year*12+month-1)."""

    first: int
    last: int

    @classmethod
    def ending(cls, end_period: str, months: int) -> Window:
        year, month = (int(x) for x in end_period.split("-"))
        last = year * 12 + month - 1
        return cls(last - months + 1, last)

    @property
    def months(self) -> int:
        return self.last - self.first + 1

    @property
    def start(self) -> np.datetime64:
        return month_start(self.first)

    @property
    def now(self) -> np.datetime64:
        """The moment the EPR snapshot is taken: midnight after the last day of the window."""
        return month_start(self.last + 1)

    def period(self, k: int) -> str:
        mi = self.first + k
        return f"{mi // 12:04d}-{mi % 12 + 1:02d}"

    @property
    def periods(self) -> list[str]:
        return [self.period(k) for k in range(self.months)]


@dataclass
class Spine:
    window: Window
    patients: Frame
    gp_registrations: Frame
    referrals: Frame
    referral_teams: Frame
    admissions: Frame
    ward_movements: Frame
    diagnoses: Frame
    #: Patient attributes by patient int id (for ages at contact time): dob (datetime64[D]).
    dob_by_pid: np.ndarray
    #: 9-digit NHS number bodies not used by any patient (planted invalid numbers come from here).
    unused_nhs_bodies: np.ndarray
    next_ids: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# NHS numbers
# ---------------------------------------------------------------------------------------------


def nhs_check_digits(bodies: np.ndarray) -> np.ndarray:
    """Modulus 11 check digit for 9-digit integer bodies (10 = no valid number; vectorised
    twin of identifiers.nhs_number_check_digit, cross-checked in the tests)."""
    total = np.zeros(len(bodies), dtype=np.int64)
    rest = bodies.astype(np.int64).copy()
    for weight in range(2, 11):  # last digit has weight 2, first weight 10
        total += (rest % 10) * weight
        rest //= 10
    check = 11 - total % 11
    return np.where(check == 11, 0, check)


#: A national pool instead of the trust's own draw: (pool seed, own start, shared start, shared).
#: The pool is one permutation of the valid test-range numbers; a provider takes ``shared`` of
#: its numbers from ``shared start`` on (the previous provider's first numbers, so those people
#: are seen by both) and the rest from ``own start`` on, wrapping round the pool. None (the single
#: trust) draws from ``rng``. Set by :func:`mhsds_pipeline.synthetic.profile.applied`.
NHS_POOL: tuple[int, int, int, int] | None = None


def _pool_numbers(valid: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct bodies from the national pool window :data:`NHS_POOL` describes."""
    pool_seed, own_start, shared_start, shared = NHS_POOL
    pool = np.random.default_rng([pool_seed, 999]).permutation(valid)
    m = len(pool)
    k = min(shared, n)
    shared_idx = (shared_start + np.arange(k, dtype=np.int64)) % m
    own_idx = (own_start + np.arange(min(n + k, m), dtype=np.int64)) % m
    own_idx = own_idx[~np.isin(own_idx, shared_idx)][: n - k]
    # spread the shared people among the provider's patients
    return rng.permutation(pool[np.concatenate([own_idx, shared_idx])])


def _nhs_numbers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct valid test-range NHS numbers (999 000 0000 - 999 999 9999) and the unused bodies."""
    bodies = 999_000_000 + np.arange(1_000_000, dtype=np.int64)
    check = nhs_check_digits(bodies)
    ok = (check != 10) & (bodies != 999_999_999)  # 9999999999 is a repeated-digit dummy
    if NHS_POOL is not None and n <= int(ok.sum()):
        used = _pool_numbers(bodies[ok], n, rng)
        numbers = (used * 10 + check[used - 999_000_000]).astype("U10")
        return numbers, np.sort(np.concatenate([np.setdiff1d(bodies[ok], used), bodies[~ok]]))
    valid = rng.permutation(bodies[ok])
    if n > len(valid):
        raise ValueError(
            f"{n:,} patients need more NHS numbers than the 999 test range holds ({len(valid):,}); "
            "lower the scale or the number of months"
        )
    used = valid[:n]
    numbers = (used * 10 + check[used - 999_000_000]).astype("U10")
    unused = np.sort(np.concatenate([valid[n:], bodies[~ok]]))
    return numbers, unused


# ---------------------------------------------------------------------------------------------
# Referral arrivals
# ---------------------------------------------------------------------------------------------


def _office_hours(rng: np.random.Generator, ts: np.ndarray) -> np.ndarray:
    """Move timestamps to a weekday between 08:00 and 18:00 (weekends -> Monday)."""
    day = ts.astype("datetime64[D]")
    dow = (day.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    day = day + np.where(dow == 5, 2, np.where(dow == 6, 1, 0)).astype("timedelta64[D]")
    tod = (8 * 3600 + rng.integers(0, 10 * 3600, len(ts))).astype("timedelta64[s]")
    return day.astype("datetime64[s]") + tod


def _arrivals(rng: np.random.Generator, si: int, scale: float, window: Window) -> Frame:
    svc = trust.SERVICES[si]
    longest = np.exp(np.log(svc.duration_median_days) + 3.5 * svc.duration_sigma)
    history = int(min(MAX_HISTORY_MONTHS, np.ceil(longest / 30.4) + 1))
    months = np.arange(window.first - history, window.last + 1)
    counts = rng.poisson(svc.new_per_month * scale, size=len(months))
    mi = np.repeat(months, counts)
    received = uniform_seconds(rng, month_start(mi), month_start(mi + 1))
    if svc.community:
        received = _office_hours(rng, received)
    n = len(received)
    duration = days(rng.lognormal(np.log(svc.duration_median_days), svc.duration_sigma, n))
    admitted = np.full(n, NAT_S)
    if svc.ward_group:
        admitted = received + (rng.integers(3600, 12 * 3600, n)).astype("timedelta64[s]")
        discharged = admitted + np.maximum(duration, np.timedelta64(4 * 3600, "s"))
    else:
        discharged = received + np.maximum(duration, np.timedelta64(1800, "s"))
    rejected_on = np.full(n, NAT_D)
    rejected = rng.random(n) < svc.reject_prob
    rej_date = to_date(received + days(rng.uniform(0, 14, n)))
    rejected &= rej_date < to_date(window.now)
    rejected_on[rejected] = rej_date[rejected]
    discharged[rejected] = NAT_S
    discharged[discharged >= window.now] = NAT_S
    keep = received < window.now
    keep &= np.isnat(discharged) | (discharged >= window.start)
    keep &= np.isnat(rejected_on) | (rejected_on >= to_date(window.start))
    real = received < window.now
    return {
        "_service": np.full(real.sum(), si, dtype=np.int16),
        "received_at": received[real],
        "discharged_at": discharged[real],
        "rejected_on": rejected_on[real],
        "_admitted": admitted[real],
        "_keep": keep[real],
    }


def _link_patients(rng: np.random.Generator, received: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Index of the referral whose person each referral belongs to (its own index for new people)."""
    n = len(received)
    svc_class = np.array([s.patient_class for s in trust.SERVICES])[service]
    link_prob = np.minimum(0.95, LINK_SCALE * np.array([s.link_prob for s in trust.SERVICES])[service])
    parent = np.arange(n)
    for cls in (trust.CLASS_CYP, trust.CLASS_ADULT, trust.CLASS_OLDER):
        rows = np.flatnonzero(svc_class == cls)
        t = received[rows]
        lo = np.searchsorted(t, t - LINK_LOOKBACK, side="left")
        pos = np.arange(len(rows))
        k = pos - lo
        linked = (rng.random(len(rows)) < link_prob[rows]) & (k > 0)
        pick = lo + (rng.random(len(rows)) * k).astype(np.int64)
        parent[rows[linked]] = rows[pick[linked]]
    root = parent
    while True:  # pointer jumping to the first referral of each person
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt


# ---------------------------------------------------------------------------------------------
# Building the spine
# ---------------------------------------------------------------------------------------------


def _per_service(rng: np.random.Generator, service: np.ndarray, attr: str) -> np.ndarray:
    """Draw a code per row from each row's service's (code, weight) list ``attr``."""
    out = np.empty(len(service), dtype="U2")
    for si, svc in enumerate(trust.SERVICES):
        rows = np.flatnonzero(service == si)
        if len(rows):
            out[rows] = choice(rng, getattr(svc, attr), len(rows))
    return out


def _postcodes(rng: np.random.Generator, locality: np.ndarray) -> np.ndarray:
    n = len(locality)
    out = np.empty(n, dtype="U8")
    letters = np.array(list(trust.POSTCODE_UNIT_LETTERS))
    for li, districts in enumerate(trust.POSTCODE_DISTRICTS):
        rows = np.flatnonzero(locality == li)
        d = np.array(districts)[rng.integers(0, len(districts), len(rows))]
        sector = rng.integers(0, 10, len(rows)).astype("U1")
        unit = np.strings.add(
            letters[rng.integers(0, len(letters), len(rows))],
            letters[rng.integers(0, len(letters), len(rows))],
        )
        out[rows] = np.strings.add(np.strings.add(d, " "), np.strings.add(sector, unit))
    return out


def _border_residents(rng: np.random.Generator, postcode: np.ndarray, locality: np.ndarray) -> np.ndarray:
    """Move a few border-locality patients to Welsh postcodes (their own random stream, so no
    other draw of the spine changes)."""
    out = postcode.copy()
    draw = rng.random(len(postcode))
    pick = rng.integers(0, len(trust.BORDER_DISTRICTS), len(postcode))
    for li, share in trust.BORDER_RESIDENT_SHARE.items():
        rows = np.flatnonzero((locality == li) & (draw < share))
        district = np.array(trust.BORDER_DISTRICTS)[pick[rows]]
        inward = np.strings.slice(postcode[rows], -3, None)
        out[rows] = np.strings.add(np.strings.add(district, " "), inward)
    return out


def build_spine(seed: int, scale: float, window: Window) -> Spine:
    """Patients, GP registrations, referrals, other teams, spells, ward stays and diagnoses."""

    def rng(component: int) -> np.random.Generator:
        return np.random.default_rng([seed, 1, component])

    now = window.now
    parts = [_arrivals(rng(100 + si), si, scale, window) for si in range(len(trust.SERVICES))]
    arr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((arr["_service"], arr["received_at"]))
    arr = {k: v[order] for k, v in arr.items()}
    # People are linked over every arrival, including referrals closed before the window that
    # are not kept: otherwise people would only be shared between long referrals.
    root_all = _link_patients(rng(1), arr["received_at"], arr["_service"])
    kept = np.flatnonzero(arr["_keep"])
    roots = np.unique(root_all[kept])  # ascending = in order of each person's first referral
    root_service = arr["_service"][roots]
    root_received = arr["received_at"][roots]
    pid_of_root = np.zeros(len(root_all), dtype=np.int64)
    pid_of_root[roots] = np.arange(1, len(roots) + 1)
    ref_pid = pid_of_root[root_all[kept]]
    arr = {k: v[kept] for k, v in arr.items()}
    n = len(kept)
    if n >= ORPHAN_ID_BASE:
        raise ValueError(f"{n:,} referrals exceed the id space; lower the scale or the months")
    service = arr["_service"]
    received = arr["received_at"]
    services = trust.SERVICES

    # --- people ---------------------------------------------------------------------------
    r = rng(11)
    n_pat = len(roots)
    root_svc = root_service
    age_min = np.array([s.age_min for s in services])[root_svc]
    age_max = np.array([s.age_max for s in services])[root_svc]
    beta_a = np.array([s.age_beta[0] for s in services])[root_svc]
    beta_b = np.array([s.age_beta[1] for s in services])[root_svc]
    age_years = age_min + (age_max - age_min + 1) * r.beta(beta_a, beta_b)
    age_years = np.minimum(age_years, age_max + 0.999)
    dob = to_date(root_received) - (age_years * 365.25).astype(np.int64).astype("timedelta64[D]")
    female = r.random(n_pat) < np.array([s.female_prob for s in services])[root_svc]
    stated = np.where(female, "2", "1")
    odd = r.random(n_pat)
    # No X (not known) defaults in clean rows: defaults are data-quality findings of their own.
    stated = np.where(odd < 0.002, "9", stated)
    identity = np.where(stated == "2", "2", "1")
    odd = r.random(n_pat)
    identity = np.where(odd < 0.006, "3", np.where(odd < 0.008, "4", np.where(odd < 0.018, "Z", identity)))
    locality = r.choice(len(trust.LOCALITIES), size=n_pat, p=trust.LOCALITY_WEIGHTS)
    ethnicity = choice(r, codes.ETHNICITY, n_pat).astype("U2")  # room for the planted 99
    language = choice(r, codes.LANGUAGES, n_pat)
    adult = age_years >= 16
    marital = np.where(adult, choice(r, codes.MARITAL_ADULT, n_pat), "")
    postcode = _border_residents(rng(12), _postcodes(r, locality), locality)
    nhs, unused_bodies = _nhs_numbers(rng(2), n_pat)
    created = root_received - days(
        np.where(r.random(n_pat) < 0.3, r.uniform(0, 1095, n_pat), r.uniform(0, 1, n_pat))
    )
    created = np.maximum(created, dob.astype("datetime64[s]"))
    updated = uniform_seconds(r, created, np.full(n_pat, now))
    patients: Frame = {
        "patient_id": np.arange(1, n_pat + 1, dtype=np.int64),
        "nhs_number": nhs,
        "nhs_number_status": np.full(n_pat, "01"),
        "date_of_birth": dob,
        "postcode": postcode,
        "gender_identity": identity,
        "stated_gender": stated,
        "ethnicity": ethnicity,
        "preferred_language": language,
        "marital_status": marital,
        "date_of_death": np.full(n_pat, NAT_D),
        "created_at": created,
        "updated_at": updated,
    }
    dob_by_pid = np.concatenate([np.array([NAT_D]), dob])
    pat_locality = np.concatenate([[0], locality])

    # --- GP registrations -------------------------------------------------------------------
    r = rng(3)
    pools = [np.array(p) for p in trust.PRACTICES]
    practice = np.empty(n_pat, dtype="U6")
    prev_practice = np.empty(n_pat, dtype="U6")
    for li, pool in enumerate(pools):
        rows = np.flatnonzero(locality == li)
        a = r.integers(0, len(pool), len(rows))
        practice[rows] = pool[a]
        prev_practice[rows] = pool[(a + r.integers(1, len(pool), len(rows))) % len(pool)]
    reg_on = to_date(root_received) - r.uniform(0, 20 * 365.25, n_pat).astype(np.int64).astype(
        "timedelta64[D]"
    )
    reg_on = np.maximum(reg_on, dob)
    changed = r.random(n_pat) < 0.07
    new_reg = to_date(
        uniform_seconds(r, np.full(n_pat, window.start - np.timedelta64(365, "D")), np.full(n_pat, now - DAY))
    )
    prev_start = np.maximum(
        dob, new_reg - r.uniform(365, 15 * 365, n_pat).astype(np.int64).astype("timedelta64[D]")
    )
    changed &= prev_start < new_reg - np.timedelta64(1, "D")
    cur_reg = np.where(changed, new_reg, reg_on)
    gp: Frame = {
        "patient_id": np.concatenate([patients["patient_id"], patients["patient_id"][changed]]),
        "practice_code": np.concatenate([practice, prev_practice[changed]]),
        "registered_on": np.concatenate([cur_reg, prev_start[changed]]),
        "deregistered_on": np.concatenate([np.full(n_pat, NAT_D), new_reg[changed] - np.timedelta64(1, "D")]),
    }
    order = np.lexsort((gp["registered_on"], gp["patient_id"]))
    gp = {k: v[order] for k, v in gp.items()}

    # --- referrals ----------------------------------------------------------------------------
    r = rng(4)
    team_map = trust.team_for_locality()
    team = team_map[service, pat_locality[ref_pid]]
    discharged = arr["discharged_at"]
    rejected_on = arr["rejected_on"]
    is_rejected = ~np.isnat(rejected_on)
    closed = ~np.isnat(discharged)
    commissioner = np.where(
        r.random(n) < 0.97,
        trust.COMMISSIONER_HOME,
        np.array(trust.COMMISSIONERS_OUT_OF_AREA)[r.integers(0, 4, n)],
    )
    last_event = np.where(
        closed, discharged, np.where(is_rejected, rejected_on.astype("datetime64[s]"), received)
    )
    updated_ref = np.minimum(
        np.maximum(last_event, received) + days(r.uniform(0, 2, n)), now - np.timedelta64(1, "s")
    )
    updated_ref = np.maximum(updated_ref, received)
    referrals: Frame = {
        "referral_id": np.arange(1, n + 1, dtype=np.int64),
        "patient_id": ref_pid,
        "team_id": team.astype(np.int32),
        "received_at": received,
        "source_of_referral": _per_service(r, service, "sources"),
        "primary_reason": _per_service(r, service, "reasons"),
        "priority": _per_service(r, service, "priorities"),
        "commissioner_code": commissioner,
        "discharged_at": discharged,
        "rejected_on": rejected_on,
        "reject_reason": np.where(is_rejected, choice(r, codes.REFERRAL_REJECT_REASONS, n), ""),
        "closure_reason": np.where(closed, choice(r, codes.REFERRAL_CLOSURE_REASONS, n), ""),
        "updated_at": updated_ref,
        "_service": service,
        "_activity": ~is_rejected,
        "_dob": dob_by_pid[ref_pid],
    }

    # --- inpatient spells and ward stays ------------------------------------------------------
    admissions, wards = build_spells(rng(5), referrals, arr["_admitted"], dob_by_pid, now)

    # --- other teams involved (MHS102) --------------------------------------------------------
    referral_teams = build_other_teams(rng(6), referrals, pat_locality, team_map, now)

    # --- diagnoses ----------------------------------------------------------------------------
    diagnoses = build_diagnoses(rng(7), referrals, now)

    return Spine(
        window=window,
        patients=patients,
        gp_registrations=gp,
        referrals=referrals,
        referral_teams=referral_teams,
        admissions=admissions,
        ward_movements=wards,
        diagnoses=diagnoses,
        dob_by_pid=dob_by_pid,
        unused_nhs_bodies=unused_bodies,
        next_ids={
            "referral_id": n + 1,
            "admission_id": len(admissions["admission_id"]) + 1,
            "ward_stay_id": len(wards["ward_stay_id"]) + 1,
        },
    )
