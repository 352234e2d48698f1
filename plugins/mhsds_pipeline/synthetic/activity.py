"""The fast-moving part of the synthetic EPR, generated one month at a time.

For each month every referral open during it gets a Poisson number of care contacts
(proportional to the time it was open in the month and its service's contact rate, rescaled so
a month has ~31,000 contacts at scale 1), placed on a day the referral was open (office hours
on weekdays for community teams, round the clock for crisis, liaison and wards). Attended
contacts get 0-2 SNOMED CT coded interventions from the seed value set; ~8% of contacts get an
activity-level scored assessment and open referrals sometimes get a referral-level one.

A month's rows depend only on the spine and that month's random stream, so memory stays
bounded by one month of activity whatever the number of months.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mhsds_pipeline.synthetic import codes, trust
from mhsds_pipeline.synthetic.frames import (
    DAY,
    MINUTE,
    Frame,
    choice,
    choice_rows,
    month_start,
    to_date,
    uniform_seconds,
)
from mhsds_pipeline.synthetic.spine import Spine

#: Care contacts dated in a 30.44-day month at scale 1 (a trust of ~800,000 people).
CONTACTS_PER_MONTH = 31_000
#: Share of all contacts that carry an activity-level (MHS607) assessment.
ACTIVITY_ASSESSMENT_SHARE = 0.08
#: Monthly chance that an open referral gets a referral-level (MHS606) assessment.
REFERRAL_ASSESSMENT_PER_MONTH = 0.06
STAFF_PER_TEAM = 30
_HOUR_WEIGHTS_24_7 = np.array(
    [
        1,
        0.7,
        0.5,
        0.4,
        0.3,
        0.3,
        0.5,
        0.8,
        1.5,
        2.5,
        3,
        3,
        2.8,
        2.8,
        3,
        3,
        2.8,
        2.5,
        2.2,
        2,
        1.8,
        1.6,
        1.4,
        1.2,
    ]
)
_DURATIONS = np.array([15, 30, 45, 60, 90])


@dataclass
class MonthActivity:
    appointments: Frame
    interventions: Frame
    assessments: Frame


class ActivityModel:
    """Generates care contacts, interventions and assessments month by month from a spine."""

    def __init__(self, spine: Spine, scale: float, seed: int):
        self.spine = spine
        self.window = spine.window
        self.scale = scale
        self.seed = seed
        ref = spine.referrals
        self.ref = ref
        self.end = np.where(np.isnat(ref["discharged_at"]), self.window.now, ref["discharged_at"])
        self.active = ref["_activity"].copy()
        # Referrals received before the window had their first contact before it.
        self.seen = ref["received_at"] < self.window.start
        svc = trust.SERVICES
        self.rate = np.array([s.contacts_per_day for s in svc])
        self.community = np.array([s.community for s in svc])
        self.line = np.array([s.code == "CRISIS_LINE" for s in svc])
        self.inpatient = np.array([s.ward_group is not None for s in svc])
        rows = codes.load_intervention_valueset()
        self.procedures = np.array([r["concept_id"] for r in rows])
        self.procedure_weights = np.vstack([codes.intervention_weights(s, rows) for s in svc])
        self.tools = codes.load_assessment_tools()
        self.tool_ids = np.array([t.concept_id for t in self.tools])
        self.tool_min = np.array([t.min_score for t in self.tools])
        self.tool_max = np.array([t.max_score for t in self.tools])
        self.tool_age_lo = np.array([t.age_min for t in self.tools])
        self.tool_age_hi = np.array([t.age_max for t in self.tools])
        self.icd_by_service = [np.array(s.icd10) for s in svc]
        self.next_ids = {"appointment_id": 1, "intervention_id": 1, "assessment_id": 1}

    def rng(self, k: int, component: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 2, k, component])

    # ------------------------------------------------------------------------------------------
    def open_intervals(self, mi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, lo, hi): referrals with activity open during absolute month ``mi`` and the part of
        the month they were open."""
        ms, me = month_start(mi), month_start(mi + 1)
        lo = np.maximum(self.ref["received_at"], ms)
        hi = np.minimum(self.end, me)
        rows = np.flatnonzero(self.active & (hi > lo))
        return rows, lo[rows], hi[rows]

    def contact_times(
        self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, community: np.ndarray
    ) -> np.ndarray:
        """A start time in ``[lo, hi)`` for each contact: a whole day inside the interval when
        there is one (weekday office hours for community teams), else any instant of it."""
        n = len(lo)
        first_full = lo.astype("datetime64[D]")
        first_full = np.where(first_full.astype("datetime64[s]") < lo, first_full + 1, first_full)
        last_excl = hi.astype("datetime64[D]")
        n_full = (last_excl - first_full).astype(np.int64)
        has_day = n_full > 0
        day = first_full + (rng.random(n) * np.maximum(n_full, 1)).astype(np.int64).astype("timedelta64[D]")
        dow = (day.astype(np.int64) + 3) % 7
        back = np.where(dow == 5, 1, np.where(dow == 6, 2, 0)).astype("timedelta64[D]")
        fwd = np.where(dow == 5, 2, np.where(dow == 6, 1, 0)).astype("timedelta64[D]")
        weekday = np.where(
            day - back >= first_full, day - back, np.where(day + fwd < last_excl, day + fwd, day)
        )
        day = np.where(community, weekday, day)
        office = (9 * 3600 + 900 * rng.integers(0, 32, n)).astype("timedelta64[s]")
        hour = rng.choice(24, size=n, p=_HOUR_WEIGHTS_24_7 / _HOUR_WEIGHTS_24_7.sum())
        anytime = (hour * 3600 + 60 * rng.integers(0, 60, n)).astype("timedelta64[s]")
        in_day = day.astype("datetime64[s]") + np.where(community, office, anytime)
        return np.where(has_day, in_day, uniform_seconds(rng, lo, hi))

    def make_contacts(
        self,
        rng: np.random.Generator,
        referral_id: np.ndarray,
        team: np.ndarray,
        service: np.ndarray,
        start: np.ndarray,
        first: np.ndarray,
        record_by: np.ndarray,
    ) -> Frame:
        """Appointment rows (without ids) for contacts at ``start``; ``recorded_at`` is the same
        day or a few days later but before ``record_by`` (the end of the month for clean rows)."""
        n = len(start)
        attendance = choice(rng, codes.ATTENDANCE, n)
        attended = (attendance == "5") | (attendance == "6")
        line = self.line[service]
        inpatient = self.inpatient[service]
        duration = _DURATIONS[rng.choice(5, size=n, p=[0.08, 0.25, 0.22, 0.35, 0.10])]
        duration = np.where(line, rng.integers(10, 40, n), duration)
        duration = np.where(attended, duration, -1)
        mech = np.where(
            self.community[service],
            choice(rng, codes.MECHANISM_COMMUNITY, n),
            choice(rng, codes.MECHANISM_24_7, n),
        )
        mech = np.where(line, choice(rng, codes.MECHANISM_LINE, n), mech)
        mech = np.where(inpatient, "01", mech)
        loc = np.where(
            self.community[service],
            choice(rng, codes.LOCATIONS_COMMUNITY, n),
            choice(rng, codes.LOCATIONS_24_7, n),
        )
        loc = np.where(inpatient, "B02", loc)
        loc = np.where(mech == "01", loc, "")
        cancelled = (attendance == "2") | (attendance == "4")
        cancelled_on = np.where(
            cancelled,
            to_date(start) - rng.integers(0, 15, n).astype("timedelta64[D]"),
            np.datetime64("NaT", "D"),
        )
        reason = np.where(
            attendance == "2",
            np.array(codes.CANCEL_REASONS_PATIENT)[rng.integers(0, 3, n)],
            np.array(codes.CANCEL_REASONS_PROVIDER)[rng.integers(0, 2, n)],
        )
        reason = np.where(cancelled, reason, "")
        u = rng.random(n)
        delay_min = np.where(
            u < 0.6,
            rng.uniform(0, 240, n),
            np.where(u < 0.9, rng.uniform(240, 3 * 1440, n), rng.uniform(3 * 1440, 10 * 1440, n)),
        )
        recorded = start + (np.maximum(duration, 10) * 60 + delay_min * 60).astype(np.int64).astype(
            "timedelta64[s]"
        )
        recorded = np.maximum(np.minimum(recorded, record_by - np.timedelta64(1, "s")), start)
        clinician = team.astype(np.int64) * 100 + rng.integers(1, STAFF_PER_TEAM + 1, n)
        return {
            "appointment_id": np.zeros(n, dtype=np.int64),
            "referral_id": referral_id.astype(np.int64),
            "team_id": team.astype(np.int32),
            "clinician_id": clinician,
            "start_at": start,
            "duration_minutes": duration.astype(np.int64),
            "consultation_type": np.where(first, "01", "02"),
            "contact_mechanism": mech,
            "location_type": loc,
            "attendance": attendance,
            "cancelled_on": cancelled_on,
            "cancellation_reason": reason,
            "recorded_at": recorded,
            "_service": service.astype(np.int16),
            "_dob": np.zeros(n, dtype="datetime64[D]"),
        }

    def assign_ids(self, column: str, n: int) -> np.ndarray:
        start = self.next_ids[column]
        self.next_ids[column] = start + n
        return np.arange(start, start + n, dtype=np.int64)

    # ------------------------------------------------------------------------------------------
    def month(self, k: int) -> MonthActivity:
        """Clean activity for window month ``k`` (0 = first month)."""
        mi = self.window.first + k
        ms, me = month_start(mi), month_start(mi + 1)
        rng = self.rng(k, 0)
        ref = self.ref
        rows, lo, hi = self.open_intervals(mi)
        service = ref["_service"][rows]
        weight = self.rate[service] * ((hi - lo) / DAY)
        month_days = (me - ms) / DAY
        target = CONTACTS_PER_MONTH * self.scale * month_days / 30.44
        lam = weight * (target / weight.sum()) if weight.sum() > 0 else weight
        counts = rng.poisson(lam)
        idx = np.repeat(np.arange(len(rows)), counts)
        start = self.contact_times(rng, lo[idx], hi[idx], self.community[service[idx]])
        order = np.lexsort((ref["referral_id"][rows[idx]], start))
        idx, start = idx[order], start[order]
        ref_rows = rows[idx]
        # First contact of a referral that had none before -> initial consultation (01).
        _, first_pos = np.unique(ref_rows, return_index=True)
        first = np.zeros(len(ref_rows), dtype=bool)
        first[first_pos] = ~self.seen[ref_rows[first_pos]]
        self.seen[ref_rows] = True
        appts = self.make_contacts(
            rng,
            ref["referral_id"][ref_rows],
            ref["team_id"][ref_rows],
            service[idx],
            start,
            first,
            np.full(len(start), me),
        )
        appts["_dob"] = ref["_dob"][ref_rows]
        appts["appointment_id"] = self.assign_ids("appointment_id", len(start))

        interventions = self._interventions(self.rng(k, 1), appts)
        assessments = self._assessments(self.rng(k, 2), appts, interventions, rows, lo, hi, month_days)
        return MonthActivity(appts, interventions, assessments)

    def _interventions(self, rng: np.random.Generator, appts: Frame) -> Frame:
        attended = (appts["attendance"] == "5") | (appts["attendance"] == "6")
        per = np.where(attended, rng.choice(3, size=len(attended), p=[0.42, 0.46, 0.12]), 0)
        src = np.repeat(np.arange(len(per)), per)
        n = len(src)
        service = appts["_service"][src]
        code_idx = choice_rows(rng, self.procedure_weights[service])
        dur = appts["duration_minutes"][src]
        idur = np.maximum(5, np.round(rng.uniform(0.3, 1.0, n) * dur / 5) * 5).astype(np.int64)
        has_finding = rng.random(n) < 0.1
        finding = np.empty(n, dtype="U18")
        pick = rng.random(n)
        for si, icd in enumerate(self.icd_by_service):
            sel = np.flatnonzero(service == si)
            finding[sel] = icd[(pick[sel] * len(icd)).astype(np.int64)]
        return {
            "intervention_id": self.assign_ids("intervention_id", n),
            "appointment_id": appts["appointment_id"][src],
            "snomed_procedure": self.procedures[code_idx],
            "finding_scheme": np.where(has_finding, "01", ""),
            "finding_code": np.where(has_finding, finding, ""),
            "duration_minutes": idur,
            "recorded_at": appts["recorded_at"][src],
            "_appt_row": src,
        }

    def _tools_for_age(
        self, rng: np.random.Generator, age_years: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(tool index, integer score within the tool's range) for people of these ages."""
        age = np.floor(age_years)[:, None]
        eligible = (age >= self.tool_age_lo[None, :]) & (age <= self.tool_age_hi[None, :])
        tool = choice_rows(rng, eligible.astype(float))
        tool = np.where(tool < 0, 0, tool)
        p = rng.uniform(0.15, 0.75, len(tool))
        score = self.tool_min[tool] + rng.binomial(self.tool_max[tool] - self.tool_min[tool], p)
        return tool, score

    def _assessments(
        self,
        rng: np.random.Generator,
        appts: Frame,
        interventions: Frame,
        rows: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        month_days: float,
    ) -> Frame:
        ref = self.ref
        # Activity level: on the first intervention of a share of contacts.
        src = interventions["_appt_row"]
        first_of_appt = np.r_[True, src[1:] != src[:-1]] if len(src) else np.zeros(0, dtype=bool)
        cand = np.flatnonzero(first_of_appt)
        q = min(1.0, ACTIVITY_ASSESSMENT_SHARE * len(appts["appointment_id"]) / max(len(cand), 1))
        act = cand[rng.random(len(cand)) < q]
        a_rows = src[act]
        when_a = appts["start_at"][a_rows]
        age_a = (to_date(when_a) - appts["_dob"][a_rows]) / np.timedelta64(1, "D") / 365.25
        tool_a, score_a = self._tools_for_age(rng, age_a)
        # Referral level: open referrals, in proportion to the part of the month they were open.
        p = REFERRAL_ASSESSMENT_PER_MONTH * ((hi - lo) / DAY) / month_days
        pick = rng.random(len(rows)) < p
        r_rows = rows[pick]
        when_r = uniform_seconds(rng, lo[pick], hi[pick])
        age_r = (to_date(when_r) - ref["_dob"][r_rows]) / np.timedelta64(1, "D") / 365.25
        tool_r, score_r = self._tools_for_age(rng, age_r)
        clin_r = ref["team_id"][r_rows].astype(np.int64) * 100 + rng.integers(
            1, STAFF_PER_TEAM + 1, len(r_rows)
        )
        n = len(act) + len(r_rows)
        return {
            "assessment_id": self.assign_ids("assessment_id", n),
            "referral_id": np.concatenate([appts["referral_id"][a_rows], ref["referral_id"][r_rows]]),
            "intervention_id": np.concatenate(
                [interventions["intervention_id"][act], np.full(len(r_rows), -1, dtype=np.int64)]
            ),
            "tool_snomed": np.concatenate([self.tool_ids[tool_a], self.tool_ids[tool_r]]),
            "score": np.concatenate([score_a, score_r]).astype("U10"),
            "completed_at": np.concatenate([when_a + MINUTE * 0, when_r]),
            "clinician_id": np.concatenate([appts["clinician_id"][a_rows], clin_r]),
            "_tool": np.concatenate([tool_a, tool_r]),
        }
