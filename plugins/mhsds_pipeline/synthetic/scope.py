"""The extract scope of docs/source_contract.md, computed in numpy from the generator's model.

This is deliberately a second, independent implementation of the scope rules (the first is the
SQL defined in ``mhsds_pipeline.source.scope``, which the extract pushes down to the source):
``expected_keys.parquet`` is what the extract, the dbt marts and the tests are checked against,
so it must not share code with them (neither module imports the other).

Each row gets a ``uint64`` bit mask: bit ``k`` set means the row is extracted for window month
``k`` (month 0 = the first). Hence at most 64 months per generation.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.synthetic.frames import Frame, month_index, month_start
from mhsds_pipeline.synthetic.spine import Window

MAX_MONTHS = 64
_ONE = np.uint64(1)


def or_by_key(keys: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique keys, OR of the masks of the rows holding each key)."""
    if len(keys) == 0:
        return keys[:0], masks[:0]
    order = np.argsort(keys, kind="stable")
    k, m = keys[order], masks[order]
    starts = np.r_[0, np.flatnonzero(k[1:] != k[:-1]) + 1]
    return k[starts], np.bitwise_or.reduceat(m, starts)


def lookup(ukeys: np.ndarray, umasks: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Mask for each of ``keys`` (0 where the key is absent)."""
    if len(ukeys) == 0:
        return np.zeros(len(keys), dtype=np.uint64)
    pos = np.minimum(np.searchsorted(ukeys, keys), len(ukeys) - 1)
    return np.where(ukeys[pos] == keys, umasks[pos], np.uint64(0))


class Scope:
    """Per-row month masks for every EPR table, following the contract table by table."""

    def __init__(self, window: Window):
        if window.months > MAX_MONTHS:
            raise ValueError(f"at most {MAX_MONTHS} months can be generated at once")
        self.window = window
        self.starts = month_start(np.arange(window.first, window.last + 1))
        self.ends = month_start(np.arange(window.first + 1, window.last + 2))  # rp_end + 1 day

    def _intervals(self, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Rows open at some time in the month: ``begin < rp_end + 1 day`` (for a date column:
        ``begin <= rp_end``, the same thing) and (``end`` NULL or ``end >= rp_start``)."""
        mask = np.zeros(len(begin), dtype=np.uint64)
        for k, (s, e) in enumerate(zip(self.starts, self.ends, strict=True)):
            began = begin < e  # numpy compares dates and timestamps at the finer unit
            open_ = np.isnat(end) | (end >= s)
            mask |= (began & open_).astype(np.uint64) << np.uint64(k)
        return mask

    def _in_period(self, ts: np.ndarray) -> np.ndarray:
        """Bit of the window month a timestamp falls in (0 outside the window or NULL)."""
        k = month_index(ts) - self.window.first
        ok = (k >= 0) & (k < self.window.months)
        return np.where(ok, _ONE << np.where(ok, k, 0).astype(np.uint64), np.uint64(0)).astype(np.uint64)

    # --- spine tables ------------------------------------------------------------------------
    def referrals(self, ref: Frame) -> np.ndarray:
        m = self._intervals(ref["received_at"], ref["discharged_at"])
        rejected = ref["rejected_on"]
        m2 = np.zeros(len(m), dtype=np.uint64)
        for k, s in enumerate(self.starts):
            ok = np.isnat(rejected) | (rejected >= s.astype("datetime64[D]"))
            m2 |= ok.astype(np.uint64) << np.uint64(k)
        return m & m2

    def referral_lookup(self, ref: Frame) -> tuple[np.ndarray, np.ndarray]:
        return or_by_key(ref["referral_id"], self.referrals(ref))

    def patients(self, pat: Frame, ref: Frame, ref_mask: np.ndarray) -> np.ndarray:
        ukeys, umasks = or_by_key(ref["patient_id"], ref_mask)
        return lookup(ukeys, umasks, pat["patient_id"])

    def gp_registrations(self, gp: Frame, pat: Frame, pat_mask: np.ndarray) -> np.ndarray:
        ukeys, umasks = or_by_key(pat["patient_id"], pat_mask)
        base = lookup(ukeys, umasks, gp["patient_id"])
        reg = gp["registered_on"]
        dereg = gp["deregistered_on"]
        m = np.zeros(len(base), dtype=np.uint64)
        for k, (s, e) in enumerate(zip(self.starts, self.ends, strict=True)):
            rp_start, rp_end = s.astype("datetime64[D]"), e.astype("datetime64[D]") - 1
            ok = (np.isnat(reg) | (reg <= rp_end)) & (np.isnat(dereg) | (dereg >= rp_start))
            m |= ok.astype(np.uint64) << np.uint64(k)
        return base & m

    # Referral teams, spells, ward stays, diagnoses coded in the month and referral-level
    # assessments belong to a month by their own dates, whether or not their referral (or
    # spell) is extracted: orphans land and are rejected by the quality gate, never dropped.
    def referral_teams(self, rt: Frame, ref: Frame | None = None) -> np.ndarray:
        return self._intervals(rt["assigned_on"], rt["closed_on"])

    def admissions(self, adm: Frame, ref: Frame | None = None) -> np.ndarray:
        return self._intervals(adm["admitted_at"], adm["discharged_at"])

    def ward_movements(self, wm: Frame, adm: Frame | None = None, ref: Frame | None = None) -> np.ndarray:
        return self._intervals(wm["start_at"], wm["end_at"])

    def diagnoses(self, dx: Frame, ref: Frame) -> np.ndarray:
        """Diagnoses of in-scope referrals coded by the end of the month (as at RP end), and any
        diagnosis coded in the month (an orphan when its referral is not in scope)."""
        base = lookup(*self.referral_lookup(ref), dx["referral_id"])
        m = np.zeros(len(base), dtype=np.uint64)
        for k, e in enumerate(self.ends):
            m |= (dx["diagnosed_at"] < e).astype(np.uint64) << np.uint64(k)
        return (base & m) | self._in_period(dx["diagnosed_at"])

    # --- activity tables ---------------------------------------------------------------------
    def appointments(self, start_at: np.ndarray, recorded_at: np.ndarray) -> np.ndarray:
        return self._in_period(start_at) | self._in_period(recorded_at)

    def indirect_activities(self, start_at: np.ndarray, recorded_at: np.ndarray) -> np.ndarray:
        """Like contacts: dated or keyed in the month, whatever their referral (orphans land)."""
        return self._in_period(start_at) | self._in_period(recorded_at)

    @staticmethod
    def interventions(appointment_id: np.ndarray, app_keys: np.ndarray, app_masks: np.ndarray) -> np.ndarray:
        return lookup(*or_by_key(app_keys, app_masks), appointment_id)

    def assessments(
        self,
        referral_id: np.ndarray,
        intervention_id: np.ndarray,
        completed_at: np.ndarray,
        iv_keys: np.ndarray,
        iv_masks: np.ndarray,
        ref: Frame,
    ) -> np.ndarray:
        activity = intervention_id >= 0
        act = lookup(*or_by_key(iv_keys, iv_masks), intervention_id)
        refl = self._in_period(completed_at)  # referral level: by date alone (orphans land too)
        return np.where(activity, act, refl)
