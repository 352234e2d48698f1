"""Planted defects in the values of clean rows: patients' identifiers and demographics (NHS
number, postcode, ethnicity), SNOMED CT procedure codes, assessment scores, and a contact keyed
twice under the same id.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.identifiers import postcode_is_valid, sctid_is_valid, verhoeff_check_digit
from mhsds_pipeline.synthetic.activity import ActivityModel, MonthActivity
from mhsds_pipeline.synthetic.defects_rules import DefectLog, DefectRates, how_many, pick, rows_per_month
from mhsds_pipeline.synthetic.frames import Frame, take
from mhsds_pipeline.synthetic.scope import Scope
from mhsds_pipeline.synthetic.spine import Spine, nhs_check_digits

_PATIENT_RULES = (
    "NHS_NUMBER_INVALID",
    "NHS_NUMBER_MISSING",
    "POSTCODE_DEFAULT",
    "POSTCODE_INVALID",
    "ETHNICITY_NOT_KNOWN",
)


def plant_patient_defects(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """Invalid or missing NHS numbers, default or invalid postcodes, ethnicity not known: the
    patients are picked for every rule first (one rule per patient), then changed."""
    pat = spine.patients
    pmask = scope.patients(pat, spine.referrals, scope.referrals(spine.referrals))
    used = np.zeros(len(pmask), dtype=bool)
    chosen: dict[str, np.ndarray] = {}
    for rule in _PATIENT_RULES:
        chosen[rule] = rows_per_month(rng, rates, rule, pmask, ~used, spine.window.months)
        used[chosen[rule]] = True

    rows = chosen["NHS_NUMBER_INVALID"]
    if len(rows):
        bodies = rng.permutation(spine.unused_nhs_bodies)[: len(rows)]
        check = nhs_check_digits(bodies)
        wrong = np.where(
            check == 10, rng.integers(0, 10, len(rows)), (check + rng.integers(1, 10, len(rows))) % 10
        )
        pat["nhs_number"][rows] = (bodies * 10 + wrong).astype("U10")
    pat["nhs_number"][chosen["NHS_NUMBER_MISSING"]] = ""
    rows = chosen["POSTCODE_DEFAULT"]
    pat["postcode"][rows] = np.where(rng.random(len(rows)) < 0.7, "ZZ99 3VZ", "ZZ99 3WZ")
    rows = chosen["POSTCODE_INVALID"]
    pat["postcode"][rows] = _invalid_postcodes(rng, pat["postcode"][rows])
    pat["ethnicity"][chosen["ETHNICITY_NOT_KNOWN"]] = "99"
    for rule in _PATIENT_RULES:
        log.add(rule, pat["patient_id"][chosen[rule]])


def _invalid_postcodes(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
    """Keying errors on real-looking postcodes that fail the pattern (never a ZZ99 default)."""
    out = []
    for pc, kind in zip(clean, rng.integers(0, 4, len(clean)), strict=True):
        outward, inward = pc.split(" ")
        district_letters = "".join(c for c in outward if c.isalpha())
        bad = (
            f"{outward} {inward[1:]}",  # inward code without its digit: "WR5 AB"
            f"{outward} {inward[:2]}",  # truncated inward code: "WR5 2A"
            f"{district_letters} {inward}",  # district number missing: "WR 2AB"
            f"{outward} {inward[1:]}{inward[1]}",  # three letters, no digit: "WR5 ABA"
        )[kind]
        assert not postcode_is_valid(bad), bad
        out.append(bad)
    return np.array(out, dtype="U8")


def _sctid(body: str) -> str:
    return body + verhoeff_check_digit(body)


def plant_snomed_codes(
    rng: np.random.Generator, model: ActivityModel, month: MonthActivity, rates: DefectRates, log: DefectLog
) -> None:
    """A wrong check digit, a wrong partition, or a valid SCTID outside the value set, on the
    month's interventions (disjoint rows, taken in turn from one random permutation)."""
    iv = month.interventions
    n_iv = len(iv["intervention_id"])
    free = rng.permutation(n_iv)
    taken = 0
    refset = set(model.procedures.tolist()) | set(model.tool_ids.tolist())
    for rule in ("SNOMED_CHECK_DIGIT", "SNOMED_PARTITION", "SNOMED_NOT_IN_REFSET"):
        n = how_many(rng, rates, rule, n_iv, n_iv - taken)
        rows = np.sort(free[taken : taken + n])
        taken += n
        new_codes = []
        for code in iv["snomed_procedure"][rows]:
            if rule == "SNOMED_CHECK_DIGIT":
                bad = code[:-1] + str((int(code[-1]) + int(rng.integers(1, 10))) % 10)
            elif rule == "SNOMED_PARTITION":
                bad = _sctid(code[:-3] + f"0{int(rng.integers(3, 10))}")
            else:
                while True:
                    item = str(int(rng.integers(10_000, 99_999_999)))
                    bad = _sctid(item + "00")
                    if bad not in refset:
                        break
            new_codes.append(bad)
        if n:
            iv["snomed_procedure"] = iv["snomed_procedure"].astype("U18")
            iv["snomed_procedure"][rows] = np.array(new_codes, dtype="U18")
            log.add(rule, iv["intervention_id"][rows])
            if rule == "SNOMED_NOT_IN_REFSET":
                assert all(sctid_is_valid(c) for c in new_codes)


def plant_assessment_scores(
    rng: np.random.Generator, model: ActivityModel, month: MonthActivity, rates: DefectRates, log: DefectLog
) -> None:
    """Scores above the tool's maximum (mostly) or below its minimum."""
    asm = month.assessments
    n_as = len(asm["assessment_id"])
    rows = np.sort(pick(rng, rates, "ASSESSMENT_SCORE_OUT_OF_RANGE", n_as, np.arange(n_as)))
    n = len(rows)
    if n:
        tool = asm["_tool"][rows]
        above = rng.random(n) < 0.7
        bad = np.where(
            above, model.tool_max[tool] + rng.integers(1, 11, n), model.tool_min[tool] - rng.integers(1, 6, n)
        )
        asm["score"][rows] = bad.astype("U10")
        log.add("ASSESSMENT_SCORE_OUT_OF_RANGE", asm["assessment_id"][rows])


def duplicate_contacts(
    rng: np.random.Generator, ap: Frame, me: np.datetime64, rates: DefectRates, log: DefectLog
) -> list[Frame]:
    """Copies of some of the month's contacts ``ap`` keyed again later (before the month's end
    ``me``) under the same id by another clinician of the team; the copies, not yet added."""
    n_ap = len(ap["appointment_id"])
    rows = np.sort(pick(rng, rates, "DUPLICATE_CONTACT_ID", n_ap, np.arange(n_ap)))
    n = len(rows)
    if not n:
        return []
    dup = take(ap, rows)
    later = dup["recorded_at"] + (rng.integers(3600, 3 * 86400, n)).astype("timedelta64[s]")
    dup["recorded_at"] = np.maximum(np.minimum(later, me - np.timedelta64(1, "s")), dup["recorded_at"])
    dup["clinician_id"] = dup["team_id"].astype(np.int64) * 100 + rng.integers(1, 31, n)
    log.add("DUPLICATE_CONTACT_ID", dup["appointment_id"])
    return [dup]
