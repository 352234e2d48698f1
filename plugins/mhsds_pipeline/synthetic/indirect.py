"""Indirect activity (MHS204IndirectActivity) of the synthetic EPR, one month at a time.

Indirect activity is work for a referral without the patient present: a consultation with the
child's school, the GP, a social worker, a midwife. A small real provider sent MHS204 rows at
about 16% of its MHS201 contact rows (mhsds.md 8: 1,052 vs 6,413), so a month holds about
``INDIRECT_SHARE`` x the month's contacts at any scale. It is concentrated where that work is
done: CYP teams (schools), perinatal and community teams; crisis, liaison and wards do little.

Each open referral gets a Poisson number of rows in proportion to the time it was open in the
month, its service's contact rate and the service's indirect weight, so some CYP referrals have
indirect activity in a month without any attended contact (the CYP access measure MHS95 counts
both, mhis_ltp.md B1). Rows are dated on a weekday in office hours on a quarter-hour grid (a
quarter of them exactly on the hour), some at another minute; the team is the referral's own or
another team involved in it at the time (MHS102); ``recorded_at`` is the same day or a few days
later, within the month.

The rows come from their own random stream (``ActivityModel.rng(k, 3)``), so adding them moved
none of the contacts, interventions or assessments generated before MHS204 existed.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.synthetic import trust
from mhsds_pipeline.synthetic.activity import CONTACTS_PER_MONTH, STAFF_PER_TEAM, ActivityModel
from mhsds_pipeline.synthetic.frames import DAY, MINUTE, Frame, choice, choice_rows, month_start, to_date

#: MHS204 rows per MHS201 contact row in a month (mhsds.md 8: 1,052 / 6,413).
INDIRECT_SHARE = 0.16
#: Relative indirect activity per care contact, by service (0: none). CYP teams consult schools
#: and families most; perinatal and community teams liaise with GPs, midwives, social care.
SERVICE_WEIGHTS: dict[str, float] = {
    "CAMHS_CORE": 0.55,
    "CAMHS_NEURO": 1.2,
    "CAMHS_MHST": 0.7,
    "CAMHS_ED": 0.35,
    "PERINATAL": 0.45,
    "ADULT_CMHT": 0.12,
    "ADULT_PCMH": 0.1,
    "ADULT_ED": 0.15,
    "OLDER_CMHT": 0.12,
    "MEMORY": 0.1,
    "EIP": 0.15,
    "IPS": 0.25,
    "CRISIS": 0.03,
    "CRISIS_LINE": 0.0,
    "LIAISON": 0.04,
}
#: IndActPersCons (seed ref_indirect_activity_person_consulted, a provisional local list) by kind
#: of service: schools for CYP, midwives and health visitors (other health) for perinatal.
_CONSULTED_CYP = (("02", 0.45), ("01", 0.12), ("03", 0.15), ("05", 0.15), ("04", 0.08), ("07", 0.05))
_CONSULTED_PERINATAL = (("04", 0.35), ("01", 0.25), ("03", 0.2), ("05", 0.15), ("98", 0.05))
_CONSULTED_ADULT = (
    ("01", 0.35), ("04", 0.2), ("03", 0.15), ("05", 0.15), ("07", 0.05), ("06", 0.05), ("98", 0.05),
)  # fmt: skip
_DURATIONS = np.array([10, 15, 20, 30, 45, 60])
_DURATION_P = [0.15, 0.25, 0.2, 0.25, 0.1, 0.05]
#: Share of rows with a SNOMED CT procedure, and with a coded (ICD-10) finding.
PROCEDURE_SHARE = 0.6
FINDING_SHARE = 0.08
#: Share of rows keyed at a minute off the quarter-hour grid.
OFF_GRID_SHARE = 0.12
#: Chance that a referral with another team involved at the time has the activity done by it.
OTHER_TEAM_SHARE = 0.3


class IndirectModel:
    """Indirect activities month by month, from the same spine and referrals as the contacts."""

    def __init__(self, model: ActivityModel):
        self.model = model
        svc = trust.SERVICES
        self.weight = np.array([SERVICE_WEIGHTS.get(s.code, 0.02) for s in svc])  # wards: 0.02
        self.cyp = np.array([s.age_group == "CYP" for s in svc])
        self.perinatal = np.array([s.code == "PERINATAL" for s in svc])
        rt = model.spine.referral_teams
        order = np.argsort(rt["referral_id"], kind="stable")
        self.rt = {k: v[order] for k, v in rt.items()}
        self.next_id = 1
        self.orphan_parents_used = 0  # missing referral ids used by ORPHAN_INDIRECT_ACTIVITY

    def assign_ids(self, n: int) -> np.ndarray:
        out = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        return out

    def _team(self, rng: np.random.Generator, ref_rows: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The referral's own team, or (sometimes) another team involved in it on ``day``."""
        ref = self.model.ref
        team = ref["team_id"][ref_rows].astype(np.int32)
        rt = self.rt
        if not len(rt["referral_id"]) or not len(ref_rows):
            return team
        rid = ref["referral_id"][ref_rows]
        pos = np.minimum(np.searchsorted(rt["referral_id"], rid), len(rt["referral_id"]) - 1)
        closed = rt["closed_on"][pos]
        open_then = (
            (rt["referral_id"][pos] == rid)
            & (rt["assigned_on"][pos] <= day)
            & (np.isnat(closed) | (closed >= day))
            & np.isnat(rt["rejected_on"][pos])
        )
        other = open_then & (rng.random(len(ref_rows)) < OTHER_TEAM_SHARE)
        return np.where(other, rt["team_id"][pos], team).astype(np.int32)

    def make_rows(
        self, rng: np.random.Generator, ref_rows: np.ndarray, start: np.ndarray, record_by: np.ndarray
    ) -> Frame:
        """Indirect activity rows (ids not yet assigned) on referrals ``ref_rows`` at ``start``,
        keyed before ``record_by``."""
        m, ref = self.model, self.model.ref
        n = len(ref_rows)
        service = ref["_service"][ref_rows]
        team = self._team(rng, ref_rows, to_date(start))
        consulted = np.where(
            self.cyp[service],
            choice(rng, _CONSULTED_CYP, n),
            np.where(
                self.perinatal[service],
                choice(rng, _CONSULTED_PERINATAL, n),
                choice(rng, _CONSULTED_ADULT, n),
            ),
        )
        has_proc = rng.random(n) < PROCEDURE_SHARE
        proc = m.procedures[np.maximum(choice_rows(rng, m.procedure_weights[service]), 0)]
        has_finding = rng.random(n) < FINDING_SHARE
        pick = rng.random(n)
        finding = np.empty(n, dtype="U18")
        for si, icd in enumerate(m.icd_by_service):
            sel = np.flatnonzero(service == si)
            finding[sel] = icd[(pick[sel] * len(icd)).astype(np.int64)]
        duration = _DURATIONS[rng.choice(len(_DURATIONS), size=n, p=_DURATION_P)]
        delay = (rng.uniform(10, 3 * 1440, n) * 60).astype(np.int64).astype("timedelta64[s]")
        recorded = np.maximum(np.minimum(start + delay, record_by - np.timedelta64(1, "s")), start)
        return {
            "indirect_activity_id": np.zeros(n, dtype=np.int64),
            "referral_id": ref["referral_id"][ref_rows].astype(np.int64),
            "team_id": team,
            "clinician_id": team.astype(np.int64) * 100 + rng.integers(1, STAFF_PER_TEAM + 1, n),
            "start_at": start,
            "duration_minutes": duration.astype(np.int64),
            "person_consulted": consulted.astype("U2"),
            "snomed_procedure": np.where(has_proc, proc, "").astype("U18"),
            "finding_scheme": np.where(has_finding, "01", ""),
            "finding_code": np.where(has_finding, finding, ""),
            "recorded_at": recorded,
        }

    def month(self, k: int) -> Frame:
        """Clean indirect activity dated in window month ``k`` (0 = the first)."""
        m = self.model
        mi = m.window.first + k
        ms, me = month_start(mi), month_start(mi + 1)
        rng = m.rng(k, 3)
        rows, lo, hi = m.open_intervals(mi)
        service = m.ref["_service"][rows]
        weight = m.rate[service] * self.weight[service] * ((hi - lo) / DAY)
        month_days = (me - ms) / DAY
        target = INDIRECT_SHARE * CONTACTS_PER_MONTH * m.scale * month_days / 30.44
        lam = weight * (target / weight.sum()) if weight.sum() > 0 else weight
        idx = np.repeat(np.arange(len(rows)), rng.poisson(lam))
        start = m.contact_times(rng, lo[idx], hi[idx], np.ones(len(idx), dtype=bool))
        # Some are keyed at another minute (not on the quarter-hour grid), inside the open interval.
        shift = (rng.random(len(idx)) < OFF_GRID_SHARE) * rng.integers(1, 15, len(idx)) * MINUTE
        start = np.where(start + shift < hi[idx], start + shift, start)
        ref_rows = rows[idx]
        # One row per referral and instant: the MHS204 key (referral, team, date, time) is unique.
        order = np.lexsort((start, m.ref["referral_id"][ref_rows]))
        ref_rows, start = ref_rows[order], start[order]
        keep = np.r_[True, (ref_rows[1:] != ref_rows[:-1]) | (start[1:] != start[:-1])]
        ref_rows, start = ref_rows[keep], start[keep]
        frame = self.make_rows(rng, ref_rows, start, np.full(len(start), me))
        frame["indirect_activity_id"] = self.assign_ids(len(start))
        return frame
