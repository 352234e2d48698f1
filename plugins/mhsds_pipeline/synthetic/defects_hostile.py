"""Hostile and malformed values (issue 10), planted last, on their own random streams, on rows
that carry no other defect, so the defects planted before them do not move.

A 120,000-character commissioner code, control characters in a postcode, free text where an
ICD-10 code belongs, a formula-like clinician id, an impossible date in a SQLite date column.
Values the numpy frames cannot hold cheaply or at all (120,000 characters, an impossible date,
text in an id column) travel in a ``_raw_<column>`` object column that the loader writes instead
of the generated value.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.synthetic.activity import ActivityModel, MonthActivity
from mhsds_pipeline.synthetic.defects_rules import (
    DefectLog,
    DefectRates,
    defective_keys,
    pick,
    raw_column,
    rows_per_month,
)
from mhsds_pipeline.synthetic.scope import Scope
from mhsds_pipeline.synthetic.spine import Spine

#: Length of the planted oversize value: far beyond any v6 format, as a pasted document would be.
OVERSIZE_LENGTH = 120_000
#: Free text keyed where an ICD-10 code belongs (each fits the column's max an18, so only the
#: DiagSchemeInUse check can reject it).
DIAGNOSIS_FREE_TEXT = ("low mood", "?psychosis", "see GP letter", "low mood, anxious", "query BPAD")
#: Control characters a paste or a scanner leaves between the outward and the inward code.
POSTCODE_SEPARATORS = ("\r\n", "\n", "\x1b")
#: Impossible (month, day) pairs for a date column.
_IMPOSSIBLE_DAYS = ((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31))


def plant_hostile_values(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """A 120,000-character commissioner code, control characters inside a postcode and free
    text in an ICD-10 diagnosis, each on rows carrying no other defect."""
    months = spine.window.months
    ref, pat, dx = spine.referrals, spine.patients, spine.diagnoses
    ref_mask = scope.referrals(ref)

    known = np.isin(ref["patient_id"], pat["patient_id"])
    ok = known & ~np.isin(ref["referral_id"], defective_keys(log, "referrals"))
    rows = rows_per_month(rng, rates, "OVERSIZE_CODE", ref_mask, ok, months)
    raw = raw_column(ref, "commissioner_code")
    for r in rows:
        raw[r] = (str(ref["commissioner_code"][r]) * OVERSIZE_LENGTH)[:OVERSIZE_LENGTH]
    log.add("OVERSIZE_CODE", ref["referral_id"][rows])

    uniq, counts = np.unique(pat["patient_id"], return_counts=True)
    ok = np.isin(pat["patient_id"], uniq[counts == 1]) & ~np.isin(
        pat["patient_id"], defective_keys(log, "patients")
    )
    rows = rows_per_month(
        rng, rates, "POSTCODE_CONTROL_CHARACTER", scope.patients(pat, ref, ref_mask), ok, months
    )
    if len(rows):
        sep = np.array(POSTCODE_SEPARATORS)[rng.integers(0, len(POSTCODE_SEPARATORS), len(rows))]
        outward, _, inward = np.strings.partition(pat["postcode"][rows], " ")
        pat["postcode"] = pat["postcode"].astype("U10")
        pat["postcode"][rows] = np.strings.add(np.strings.add(outward, sep), inward)
    log.add("POSTCODE_CONTROL_CHARACTER", pat["patient_id"][rows])

    ok = (dx["scheme"] == "02") & ~np.isin(dx["diagnosis_id"], defective_keys(log, "diagnoses"))
    rows = rows_per_month(rng, rates, "DIAGNOSIS_FREE_TEXT", scope.diagnoses(dx, ref), ok, months)
    if len(rows):
        dx["code"] = dx["code"].astype("U18")
        dx["code"][rows] = np.array(DIAGNOSIS_FREE_TEXT)[rng.integers(0, len(DIAGNOSIS_FREE_TEXT), len(rows))]
    log.add("DIAGNOSIS_FREE_TEXT", dx["diagnosis_id"][rows])


def plant_malformed_dates(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """An impossible date (``2026-02-30``) in ``admissions.planned_discharge_on``, a DATE column
    that SQLite, being dynamically typed, stores as given."""
    adm = spine.admissions
    ok = ~np.isin(adm["admission_id"], defective_keys(log, "admissions"))
    rows = rows_per_month(rng, rates, "MALFORMED_DATE", scope.admissions(adm), ok, spine.window.months)
    raw = raw_column(adm, "planned_discharge_on")
    years = adm["admitted_at"][rows].astype("datetime64[Y]").astype(int) + 1970
    for r, year, which in zip(rows, years, rng.integers(0, len(_IMPOSSIBLE_DAYS), len(rows)), strict=True):
        month, day = _IMPOSSIBLE_DAYS[which]
        raw[r] = f"{year:04d}-{month:02d}-{day:02d}"
    log.add("MALFORMED_DATE", adm["admission_id"][rows])


#: Clinician ids keyed with a leading "=" (a spreadsheet paste): valid ``max an20`` values.
FORMULA_LIKE = ("=SUM(A1:A9)", "=1+1", "=B2", "=HCP{id:05d}")


def plant_formula_like_text(
    rng: np.random.Generator, model: ActivityModel, month: MonthActivity, rates: DefectRates, log: DefectLog
) -> None:
    """CareProfLocalID values a spreadsheet would run, on referral-level assessments (MHS606)
    whose referral and patient carry no defect, so the row is published (escaped in the CSV)."""
    asm = month.assessments
    ref = model.ref
    bad_patients = defective_keys(log, "patients")
    bad_refs = np.union1d(
        defective_keys(log, "referrals"), ref["referral_id"][np.isin(ref["patient_id"], bad_patients)]
    )
    ok = (
        (asm["intervention_id"] < 0)
        & ~np.isin(asm["referral_id"], bad_refs)
        & ~np.isin(asm["assessment_id"], defective_keys(log, "assessments"))
    )
    eligible = int((asm["intervention_id"] < 0).sum())
    rows = np.sort(pick(rng, rates, "FORMULA_LIKE_TEXT", eligible, np.flatnonzero(ok)))
    n = len(rows)
    if not n:
        return
    raw = raw_column(asm, "clinician_id")
    for r, which in zip(rows, rng.integers(0, len(FORMULA_LIKE), n), strict=True):
        raw[r] = FORMULA_LIKE[which].format(id=int(asm["clinician_id"][r]))
    log.add("FORMULA_LIKE_TEXT", asm["assessment_id"][rows])
