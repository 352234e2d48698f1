"""Planted defects: the data-quality problems the pipeline must find (source_contract.md).

Every rule of the contract's "Planted defects" table is planted at a configurable rate, with a
floor of ``min_per_month`` per reporting period so that even tiny test scales have a few of
each. A defective row carries exactly one defect: candidates are always clean rows, and each
row (patient, referral, contact, ...) is used by one rule only. Rows that must stay in the
extract scope of a given month are chosen or built inside it (e.g. a spell "discharged before
admitted" has both timestamps in the month, at least a day after its start).

Some defects change existing rows (patients' identifiers, intervention codes, scores, a
referral's patient), others add rows that cannot be made from a clean one without changing its
scope (orphans, duplicates, late-keyed contacts, date-order rows).

Hostile and malformed values (a 120,000-character commissioner code, control characters in a
postcode, free text where an ICD-10 code belongs, a formula-like clinician id, an impossible date
in a SQLite date column) are planted last, on their own random streams, on rows that carry no
other defect, so the defects planted before them do not move. Values the numpy frames cannot
hold cheaply or at all (120,000 characters, an impossible date, text in an id column) travel in a
``_raw_<column>`` object column that the loader writes instead of the generated value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from mhsds_pipeline.identifiers import postcode_is_valid, sctid_is_valid, verhoeff_check_digit
from mhsds_pipeline.synthetic import codes
from mhsds_pipeline.synthetic.activity import ActivityModel, MonthActivity
from mhsds_pipeline.synthetic.frames import (
    DAY,
    HOUR,
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
from mhsds_pipeline.synthetic.spine import Spine, nhs_check_digits


@dataclass(frozen=True)
class Rule:
    name: str
    epr_table: str
    epr_column: str
    mhsds_table: str
    mhsds_column: str


#: The contract's rules, in its order: (EPR table.column, MHSDS table.column reported).
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("NHS_NUMBER_INVALID", "patients", "nhs_number", "mhs001_mpi", "NHSNumber"),
        Rule("NHS_NUMBER_MISSING", "patients", "nhs_number", "mhs001_mpi", "NHSNumber"),
        Rule("POSTCODE_DEFAULT", "patients", "postcode", "mhs001_mpi", "Postcode"),
        Rule("POSTCODE_INVALID", "patients", "postcode", "mhs001_mpi", "Postcode"),
        Rule("ETHNICITY_NOT_KNOWN", "patients", "ethnicity", "mhs001_mpi", "EthnicCategory"),
        Rule("SNOMED_CHECK_DIGIT", "interventions", "snomed_procedure", "mhs202_care_activity", "Procedure"),
        Rule("SNOMED_PARTITION", "interventions", "snomed_procedure", "mhs202_care_activity", "Procedure"),
        Rule(
            "SNOMED_NOT_IN_REFSET", "interventions", "snomed_procedure", "mhs202_care_activity", "Procedure"
        ),
        # mhsds_table is mhs606 for referral-level and mhs607 for activity-level assessments.
        Rule(
            "ASSESSMENT_SCORE_OUT_OF_RANGE",
            "assessments",
            "score",
            "mhs607_coded_score_assessment_act",
            "PersScore",
        ),
        Rule("CONTACT_OUTSIDE_PERIOD", "appointments", "start_at", "mhs201_care_contact", "CareContDate"),
        Rule("ORPHAN_CONTACT", "appointments", "referral_id", "mhs201_care_contact", "ServiceRequestID"),
        Rule("ORPHAN_REFERRAL", "referrals", "patient_id", "mhs101_referral", "LocalPatientID"),
        Rule(
            "DUPLICATE_CONTACT_ID", "appointments", "appointment_id", "mhs201_care_contact", "CareContactID"
        ),
        Rule("DATE_ORDER_REFERRAL", "referrals", "discharged_at", "mhs101_referral", "ServDischDate"),
        Rule(
            "DATE_ORDER_SPELL",
            "admissions",
            "discharged_at",
            "mhs501_hosp_prov_spell",
            "DischDateHospProvSpell",
        ),
        Rule("DATE_ORDER_WARD_STAY", "ward_movements", "end_at", "mhs502_ward_stay", "EndDateWardStay"),
        # Orphans of the inpatient and referral-level tables: the row belongs to the month by its
        # own dates, its parent (referral or spell) is missing from the EPR or not in the month.
        Rule("ORPHAN_SPELL", "admissions", "referral_id", "mhs501_hosp_prov_spell", "ServiceRequestID"),
        Rule("ORPHAN_WARD_STAY", "ward_movements", "admission_id", "mhs502_ward_stay", "HospProvSpellID"),
        Rule("ORPHAN_DIAGNOSIS", "diagnoses", "referral_id", "mhs604_prim_diag", "ServiceRequestID"),
        Rule(
            "ORPHAN_REFERRAL_TEAM",
            "referral_teams",
            "referral_id",
            "mhs102_other_service_type",
            "ServiceRequestID",
        ),
        Rule(
            "ORPHAN_ASSESSMENT",
            "assessments",
            "referral_id",
            "mhs606_coded_score_assessment_refer",
            "ServiceRequestID",
        ),
        # Hostile values (issue 10): each breaks the v6 format rule of the column it reaches.
        Rule("OVERSIZE_CODE", "referrals", "commissioner_code", "mhs101_referral", "OrgIDComm"),
        Rule("POSTCODE_CONTROL_CHARACTER", "patients", "postcode", "mhs001_mpi", "Postcode"),
        # mhsds_table is mhs604/PrimDiag for a primary and mhs605/SecDiag for a secondary diagnosis.
        Rule("DIAGNOSIS_FREE_TEXT", "diagnoses", "code", "mhs604_prim_diag", "PrimDiag"),
        # A valid value that a spreadsheet would run: published, escaped in the submission CSV.
        Rule(
            "FORMULA_LIKE_TEXT",
            "assessments",
            "clinician_id",
            "mhs606_coded_score_assessment_refer",
            "CareProfLocalID",
        ),
        # An impossible date in a SQLite DATE column (a PostgreSQL date column cannot hold one,
        # so it is planted only in a SQLite EPR); last, so the other defect ids do not depend on it.
        Rule(
            "MALFORMED_DATE",
            "admissions",
            "planned_discharge_on",
            "mhs501_hosp_prov_spell",
            "PlannedDischDateHospProvSpell",
        ),
    )
}
#: EPR key column of each table a rule can point at.
EPR_KEY = {
    "patients": "patient_id",
    "referrals": "referral_id",
    "appointments": "appointment_id",
    "interventions": "intervention_id",
    "assessments": "assessment_id",
    "admissions": "admission_id",
    "ward_movements": "ward_stay_id",
    "diagnoses": "diagnosis_id",
    # referral_teams has a composite key: its defects are logged by row number (generator)
}

#: Unused id ranges of the planted orphans' missing parents (ORPHAN_CONTACT uses +500,000).
_MISSING_PARENT_BASE = {
    "ORPHAN_SPELL": ORPHAN_ID_BASE + 600_000,
    "ORPHAN_WARD_STAY": ORPHAN_ID_BASE + 700_000,
    "ORPHAN_DIAGNOSIS": ORPHAN_ID_BASE + 800_000,
    "ORPHAN_REFERRAL_TEAM": ORPHAN_ID_BASE + 900_000,
    "ORPHAN_ASSESSMENT": ORPHAN_ID_BASE + 950_000,
}


@dataclass(frozen=True)
class DefectRates:
    """Per-rule planting rate or count, per reporting period.

    A value below 1 is a rate: a fraction of the rule's eligible rows in the month, with a floor
    of ``min_per_month`` defects (when there are candidates) so small scales still get some. A
    value of 1 or more is an exact count per month (e.g. ``orphan_contact=5``). 0 disables the rule.

    Eligible rows per month: patients in the extract (patient rules; a patient keeps a defect in
    later months, so new ones are only added to reach the rate); interventions, assessments and
    contacts generated for the month; referrals received in the month (ORPHAN_REFERRAL,
    DATE_ORDER_REFERRAL); spells and ward stays in the month's extract (DATE_ORDER_SPELL,
    DATE_ORDER_WARD_STAY, ORPHAN_SPELL, ORPHAN_WARD_STAY); diagnoses and other-team rows in the
    month's extract (ORPHAN_DIAGNOSIS, ORPHAN_REFERRAL_TEAM); the month's assessments
    (ORPHAN_ASSESSMENT). Hostile values: referrals, patients, ICD-10 diagnoses and spells in the
    month's extract (OVERSIZE_CODE, POSTCODE_CONTROL_CHARACTER, DIAGNOSIS_FREE_TEXT,
    MALFORMED_DATE; a row keeps its value in later months, so new ones are only added to reach
    the rate); the month's referral-level assessments (FORMULA_LIKE_TEXT).
    """

    nhs_number_invalid: float = 0.002
    nhs_number_missing: float = 0.003
    postcode_default: float = 0.004
    postcode_invalid: float = 0.002
    ethnicity_not_known: float = 0.01
    snomed_check_digit: float = 0.002
    snomed_partition: float = 0.001
    snomed_not_in_refset: float = 0.004
    assessment_score_out_of_range: float = 0.005
    contact_outside_period: float = 0.004
    orphan_contact: float = 0.001
    orphan_referral: float = 0.002
    duplicate_contact_id: float = 0.001
    date_order_referral: float = 0.002
    date_order_spell: float = 0.02
    date_order_ward_stay: float = 0.01
    orphan_spell: float = 0.01
    orphan_ward_stay: float = 0.01
    orphan_diagnosis: float = 0.002
    orphan_referral_team: float = 0.005
    orphan_assessment: float = 0.002
    oversize_code: float = 0.0005
    postcode_control_character: float = 0.0005
    diagnosis_free_text: float = 0.002
    formula_like_text: float = 0.002
    malformed_date: float = 0.005
    min_per_month: int = 3

    def rate(self, rule: str) -> float:
        return float(getattr(self, rule.lower()))

    @classmethod
    def none(cls) -> DefectRates:
        """No planted defects at all (a clean source)."""
        return cls(**{f.name: 0 for f in fields(cls)})

    def to_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class DefectLog:
    """Planted defects: (rule, EPR table, integer EPR key, restrict-to-period-bit or 0)."""

    rows: list[tuple[str, str, int, int]] = field(default_factory=list)

    def add(self, rule: str, keys: np.ndarray, only_bits: np.ndarray | None = None) -> None:
        """``keys``: the rows' EPR ids (for referral_teams, their row numbers in the table)."""
        table = RULES[rule].epr_table
        bits = np.zeros(len(keys), dtype=np.uint64) if only_bits is None else only_bits
        self.rows.extend((rule, table, int(k), int(b)) for k, b in zip(keys, bits, strict=True))

    def count(self, rule: str) -> int:
        return sum(1 for r in self.rows if r[0] == rule)


def _how_many(rng: np.random.Generator, rates: DefectRates, rule: str, eligible: int, candidates: int) -> int:
    """Defects of ``rule`` to plant this month: a fixed count (value >= 1) or a binomial draw at
    the rate with the ``min_per_month`` floor; never more than there are candidates."""
    rate = rates.rate(rule)
    if rate >= 1:
        n = int(rate)
    elif rate > 0:
        n = max(int(rng.binomial(eligible, rate)) if eligible > 0 else 0, rates.min_per_month)
    else:
        n = 0
    return int(min(n, candidates))


# ---------------------------------------------------------------------------------------------
# Spine defects (before activity is generated)
# ---------------------------------------------------------------------------------------------


def plant_spine_defects(
    spine: Spine, rates: DefectRates, seed: int, log: DefectLog, *, malformed_cells: bool = True
) -> None:
    """Referral, spell, ward-stay and patient defects (in that order: patients come last so
    their rates count the final referral scope), then hostile values. ``malformed_cells``: plant
    impossible dates too (only a SQLite EPR can hold them)."""
    rng = np.random.default_rng([seed, 3, 0])
    window = spine.window
    scope = Scope(window)
    _orphan_referrals(rng, spine, rates, log)
    _date_order_referrals(rng, spine, rates, log, scope)
    _date_order_spells(rng, spine, rates, log, scope)
    _date_order_ward_stays(rng, spine, rates, log, scope)
    _patient_defects(rng, spine, rates, log, scope)
    _orphans(np.random.default_rng([seed, 3, 2]), spine, rates, log, scope)
    _hostile_values(np.random.default_rng([seed, 3, 4]), spine, rates, log, scope)
    if malformed_cells:
        _malformed_dates(np.random.default_rng([seed, 3, 6]), spine, rates, log, scope)


def _months(spine: Spine):
    w = spine.window
    for k in range(w.months):
        yield k, month_start(w.first + k), month_start(w.first + k + 1)


def _orphan_referrals(rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog) -> None:
    ref = spine.referrals
    pid = ref["patient_id"]
    uniq, counts = np.unique(pid, return_counts=True)
    single = np.isin(pid, uniq[counts == 1])
    inpatient = np.array([s.ward_group is not None for s in codes.SERVICES])[ref["_service"]]
    chosen: list[np.ndarray] = []
    for _k, ms, me in _months(spine):
        new = (ref["received_at"] >= ms) & (ref["received_at"] < me)
        cand = np.flatnonzero(new & single & ref["_activity"] & ~inpatient)
        n = _how_many(rng, rates, "ORPHAN_REFERRAL", int(new.sum()), len(cand))
        chosen.append(rng.choice(cand, size=n, replace=False) if n else np.zeros(0, dtype=np.int64))
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
        svc = codes.SERVICES[si]
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
        "commissioner_code": np.full(n, codes.COMMISSIONER_HOME),
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


def _date_order_referrals(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    for k, ms, me in _months(spine):
        ref = spine.referrals
        new = int(((ref["received_at"] >= ms) & (ref["received_at"] < me)).sum())
        cand = _in_scope_referrals(scope, spine, k)
        n = _how_many(rng, rates, "DATE_ORDER_REFERRAL", new, len(cand))
        if not n:
            continue
        src = rng.choice(cand, size=n, replace=False)
        received = uniform_seconds(rng, np.full(n, ms + 2 * DAY), np.full(n, me))
        gap = np.minimum(2 * DAY, received - ms).astype(np.int64)
        back = (HOUR.astype(np.int64) + rng.random(n) * (gap - HOUR.astype(np.int64))).astype(np.int64)
        discharged = received - back.astype("timedelta64[s]")
        rows = _new_referrals(
            spine, src, received, discharged, ref["_service"][src], ref["team_id"][src], rng
        )
        log.add("DATE_ORDER_REFERRAL", spine.referrals["referral_id"][rows])


def _date_order_spells(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    team_map = codes.team_for_locality()
    by_class = {codes.CLASS_CYP: "IP_CYP", codes.CLASS_OLDER: "IP_OLDER", codes.CLASS_ADULT: "IP_ACUTE"}
    svc_class = np.array([s.patient_class for s in codes.SERVICES])
    for k, ms, me in _months(spine):
        adm = spine.admissions
        in_scope = int(((scope.admissions(adm, spine.referrals) >> np.uint64(k)) & np.uint64(1)).sum())
        cand = _in_scope_referrals(scope, spine, k)
        n = _how_many(rng, rates, "DATE_ORDER_SPELL", in_scope, len(cand))
        if not n:
            continue
        ref = spine.referrals
        src = rng.choice(cand, size=n, replace=False)
        service = np.array([codes.SERVICE_INDEX[by_class[c]] for c in svc_class[ref["_service"][src]]])
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


def _date_order_ward_stays(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    bad_spells = {key for rule, _t, key, _b in log.rows if rule == "DATE_ORDER_SPELL"}
    for k, ms, me in _months(spine):
        adm = spine.admissions
        wm = spine.ward_movements
        amask = ((scope.admissions(adm, spine.referrals) >> np.uint64(k)) & np.uint64(1)).astype(bool)
        wmask = ((scope.ward_movements(wm, adm, spine.referrals) >> np.uint64(k)) & np.uint64(1)).astype(bool)
        end = np.where(np.isnat(adm["discharged_at"]), spine.window.now, adm["discharged_at"])
        lo = np.maximum(adm["admitted_at"], ms + 2 * DAY)
        hi = np.minimum(end, me)
        clean = ~np.isin(adm["admission_id"], np.array(sorted(bad_spells), dtype=np.int64))
        cand = np.flatnonzero(amask & clean & (hi - lo > HOUR))
        n = _how_many(rng, rates, "DATE_ORDER_WARD_STAY", int(wmask.sum()), len(cand))
        if not n:
            continue
        rows = rng.choice(cand, size=n, replace=False)
        start = uniform_seconds(rng, lo[rows], hi[rows])
        gap = np.minimum(DAY, start - ms).astype(np.int64)
        back = (HOUR.astype(np.int64) + rng.random(n) * (gap - HOUR.astype(np.int64))).astype(np.int64)
        end_at = start - back.astype("timedelta64[s]")
        # The ward the patient was on at `start` (their first ward stay's ward as a fallback).
        first_stay = np.searchsorted(wm["admission_id"], adm["admission_id"][rows])
        ward = wm["ward_code"][np.minimum(first_stay, len(wm["ward_code"]) - 1)]
        ward_class = np.array([w.patient_class for w in codes.WARDS])[ward]
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


def _orphan_parents(
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


def _orphans(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """Spells, ward stays, diagnoses and other-team rows that belong to one month by their own
    dates but whose parent is missing from the EPR or closed before that month. Each lies wholly
    inside its month, so it is an orphan in exactly one period. An orphan spell gets one ward
    stay, which the quality gate rejects by cascade (not a planted defect of its own)."""
    counter: dict[str, int] = {}
    bad_referrals = {key for rule, table, key, _b in log.rows if table == "referrals"}
    bad_spells = {key for rule, table, key, _b in log.rows if table == "admissions"}
    ward_rows = np.arange(len(spine.ward_movements["ward_stay_id"]))
    for k, ms, me in _months(spine):
        ref, adm, wm = spine.referrals, spine.admissions, spine.ward_movements
        clean_ref = ~np.isin(ref["referral_id"], np.array(sorted(bad_referrals), dtype=np.int64))
        closed_refs = np.flatnonzero(
            clean_ref
            & ~np.isnat(ref["discharged_at"])
            & (ref["discharged_at"] < ms)
            & np.isnat(ref["rejected_on"])
        )
        clean_adm = ~np.isin(adm["admission_id"], np.array(sorted(bad_spells), dtype=np.int64))
        closed_adm = adm["admission_id"][
            clean_adm & ~np.isnat(adm["discharged_at"]) & (adm["discharged_at"] < ms)
        ]

        def bit_count(mask: np.ndarray, k: int = k) -> int:
            return int(((mask >> np.uint64(k)) & np.uint64(1)).sum())

        def in_month(n: int, ms=ms, me=me) -> np.ndarray:
            return uniform_seconds(rng, np.full(n, ms + DAY), np.full(n, me - 3 * DAY))

        # --- spells (each with one ward stay) -------------------------------------------------
        n = _how_many(rng, rates, "ORPHAN_SPELL", bit_count(scope.admissions(adm)), 10**9)
        if n:
            parents, _ = _orphan_parents(rng, "ORPHAN_SPELL", n, ref["referral_id"][closed_refs], counter)
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
        n = _how_many(rng, rates, "ORPHAN_WARD_STAY", bit_count(scope.ward_movements(wm)), 10**9)
        if n:
            parents, _ = _orphan_parents(rng, "ORPHAN_WARD_STAY", n, closed_adm, counter)
            start = in_month(n)
            end = start + (rng.integers(2, 48, n) * 3600).astype("timedelta64[s]")
            before = len(spine.ward_movements["ward_stay_id"])
            spine.ward_movements = _add_ward_stays(rng, spine, parents, start, end, ward_rows)
            log.add("ORPHAN_WARD_STAY", spine.ward_movements["ward_stay_id"][before:])

        # --- diagnoses ------------------------------------------------------------------------
        dx = spine.diagnoses
        n = _how_many(rng, rates, "ORPHAN_DIAGNOSIS", bit_count(scope.diagnoses(dx, ref)), 10**9)
        icd = dx["scheme"] == "02"
        if n and icd.any():
            undiagnosed = ref["referral_id"][closed_refs]  # one primary diagnosis per referral
            undiagnosed = undiagnosed[~np.isin(undiagnosed, dx["referral_id"])]
            parents, _ = _orphan_parents(rng, "ORPHAN_DIAGNOSIS", n, undiagnosed, counter)
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
        n = _how_many(rng, rates, "ORPHAN_REFERRAL_TEAM", bit_count(scope.referral_teams(rt)), 10**9)
        if n:
            parents, closed = _orphan_parents(
                rng, "ORPHAN_REFERRAL_TEAM", n, ref["referral_id"][closed_refs], counter
            )
            # A closed referral's own (primary) team is never one of its other teams: no duplicate
            # (referral, team) pair; a missing referral gets any community team.
            own_team = ref["team_id"][
                np.searchsorted(ref["referral_id"], parents).clip(0, len(ref["team_id"]) - 1)
            ]
            community = np.array(
                [ti for ti, t in enumerate(codes.TEAMS) if codes.SERVICES[t.service].community]
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


_PATIENT_RULES = (
    "NHS_NUMBER_INVALID",
    "NHS_NUMBER_MISSING",
    "POSTCODE_DEFAULT",
    "POSTCODE_INVALID",
    "ETHNICITY_NOT_KNOWN",
)


def _patient_defects(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    pat = spine.patients
    pmask = scope.patients(pat, spine.referrals, scope.referrals(spine.referrals))
    used = np.zeros(len(pmask), dtype=bool)
    chosen: dict[str, np.ndarray] = {}
    for rule in _PATIENT_RULES:
        mine = np.zeros(len(pmask), dtype=bool)
        for k in range(spine.window.months):
            in_k = ((pmask >> np.uint64(k)) & np.uint64(1)).astype(bool)
            have = int((mine & in_k).sum())
            cand = np.flatnonzero(in_k & ~used)
            target = _how_many(rng, rates, rule, int(in_k.sum()), have + len(cand))
            add = max(0, target - have)
            if add:
                pick = rng.choice(cand, size=min(add, len(cand)), replace=False)
                mine[pick] = True
                used[pick] = True
        chosen[rule] = np.flatnonzero(mine)

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


# ---------------------------------------------------------------------------------------------
# Hostile and malformed values (issue 10)
# ---------------------------------------------------------------------------------------------

#: Length of the planted oversize value: far beyond any v6 format, as a pasted document would be.
OVERSIZE_LENGTH = 120_000
#: Free text keyed where an ICD-10 code belongs (each fits the column's max an18, so only the
#: DiagSchemeInUse check can reject it).
DIAGNOSIS_FREE_TEXT = ("low mood", "?psychosis", "see GP letter", "low mood, anxious", "query BPAD")
#: Control characters a paste or a scanner leaves between the outward and the inward code.
POSTCODE_SEPARATORS = ("\r\n", "\n", "\x1b")
#: Impossible (month, day) pairs for a date column.
_IMPOSSIBLE_DAYS = ((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31))


def _defective_keys(log: DefectLog, table: str) -> np.ndarray:
    return np.array(sorted({key for _r, t, key, _b in log.rows if t == table}), dtype=np.int64)


def _rows_per_month(
    rng: np.random.Generator, rates: DefectRates, rule: str, mask: np.ndarray, ok: np.ndarray, months: int
) -> np.ndarray:
    """Rows (``ok`` ones) for a defect kept by a row in every month it is extracted: each month
    adds rows until the month's extract holds the rule's rate (or floor)."""
    mine = np.zeros(len(mask), dtype=bool)
    for k in range(months):
        in_k = ((mask >> np.uint64(k)) & np.uint64(1)).astype(bool)
        have = int((mine & in_k).sum())
        cand = np.flatnonzero(in_k & ok & ~mine)
        add = max(0, _how_many(rng, rates, rule, int(in_k.sum()), have + len(cand)) - have)
        if add:
            mine[rng.choice(cand, size=min(add, len(cand)), replace=False)] = True
    return np.flatnonzero(mine)


def _raw_column(frame: Frame, column: str) -> np.ndarray:
    """The frame's ``_raw_<column>`` override (None = write the generated value)."""
    name = f"_raw_{column}"
    if name not in frame:
        frame[name] = np.full(len(frame[column]), None, dtype=object)
    return frame[name]


def _hostile_values(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """A 120,000-character commissioner code, control characters inside a postcode and free
    text in an ICD-10 diagnosis, each on rows carrying no other defect."""
    months = spine.window.months
    ref, pat, dx = spine.referrals, spine.patients, spine.diagnoses
    ref_mask = scope.referrals(ref)

    known = np.isin(ref["patient_id"], pat["patient_id"])
    ok = known & ~np.isin(ref["referral_id"], _defective_keys(log, "referrals"))
    rows = _rows_per_month(rng, rates, "OVERSIZE_CODE", ref_mask, ok, months)
    raw = _raw_column(ref, "commissioner_code")
    for r in rows:
        raw[r] = (str(ref["commissioner_code"][r]) * OVERSIZE_LENGTH)[:OVERSIZE_LENGTH]
    log.add("OVERSIZE_CODE", ref["referral_id"][rows])

    uniq, counts = np.unique(pat["patient_id"], return_counts=True)
    ok = np.isin(pat["patient_id"], uniq[counts == 1]) & ~np.isin(
        pat["patient_id"], _defective_keys(log, "patients")
    )
    rows = _rows_per_month(
        rng, rates, "POSTCODE_CONTROL_CHARACTER", scope.patients(pat, ref, ref_mask), ok, months
    )
    if len(rows):
        sep = np.array(POSTCODE_SEPARATORS)[rng.integers(0, len(POSTCODE_SEPARATORS), len(rows))]
        outward, _, inward = np.strings.partition(pat["postcode"][rows], " ")
        pat["postcode"] = pat["postcode"].astype("U10")
        pat["postcode"][rows] = np.strings.add(np.strings.add(outward, sep), inward)
    log.add("POSTCODE_CONTROL_CHARACTER", pat["patient_id"][rows])

    ok = (dx["scheme"] == "02") & ~np.isin(dx["diagnosis_id"], _defective_keys(log, "diagnoses"))
    rows = _rows_per_month(rng, rates, "DIAGNOSIS_FREE_TEXT", scope.diagnoses(dx, ref), ok, months)
    if len(rows):
        dx["code"] = dx["code"].astype("U18")
        dx["code"][rows] = np.array(DIAGNOSIS_FREE_TEXT)[rng.integers(0, len(DIAGNOSIS_FREE_TEXT), len(rows))]
    log.add("DIAGNOSIS_FREE_TEXT", dx["diagnosis_id"][rows])


def _malformed_dates(
    rng: np.random.Generator, spine: Spine, rates: DefectRates, log: DefectLog, scope: Scope
) -> None:
    """An impossible date (``2026-02-30``) in ``admissions.planned_discharge_on``, a DATE column
    that SQLite, being dynamically typed, stores as given."""
    adm = spine.admissions
    ok = ~np.isin(adm["admission_id"], _defective_keys(log, "admissions"))
    rows = _rows_per_month(rng, rates, "MALFORMED_DATE", scope.admissions(adm), ok, spine.window.months)
    raw = _raw_column(adm, "planned_discharge_on")
    years = adm["admitted_at"][rows].astype("datetime64[Y]").astype(int) + 1970
    for r, year, pick in zip(rows, years, rng.integers(0, len(_IMPOSSIBLE_DAYS), len(rows)), strict=True):
        month, day = _IMPOSSIBLE_DAYS[pick]
        raw[r] = f"{year:04d}-{month:02d}-{day:02d}"
    log.add("MALFORMED_DATE", adm["admission_id"][rows])


# ---------------------------------------------------------------------------------------------
# Month defects (after a month's clean activity is generated)
# ---------------------------------------------------------------------------------------------


def _sctid(body: str) -> str:
    return body + verhoeff_check_digit(body)


def plant_month_defects(
    model: ActivityModel, month: MonthActivity, k: int, rates: DefectRates, seed: int, log: DefectLog
) -> MonthActivity:
    """Mutate/add this month's intervention, assessment and contact defects; returns the month."""
    rng = np.random.default_rng([seed, 3, 1, k])
    window = model.window
    mi = window.first + k
    ms, me = month_start(mi), month_start(mi + 1)

    # --- SNOMED codes ------------------------------------------------------------------------
    iv = month.interventions
    n_iv = len(iv["intervention_id"])
    free = rng.permutation(n_iv)
    taken = 0
    refset = set(model.procedures.tolist()) | set(model.tool_ids.tolist())
    for rule in ("SNOMED_CHECK_DIGIT", "SNOMED_PARTITION", "SNOMED_NOT_IN_REFSET"):
        n = _how_many(rng, rates, rule, n_iv, n_iv - taken)
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

    # --- assessment scores -------------------------------------------------------------------
    asm = month.assessments
    n_as = len(asm["assessment_id"])
    n = _how_many(rng, rates, "ASSESSMENT_SCORE_OUT_OF_RANGE", n_as, n_as)
    if n:
        rows = np.sort(rng.choice(n_as, size=n, replace=False))
        tool = asm["_tool"][rows]
        above = rng.random(n) < 0.7
        bad = np.where(
            above, model.tool_max[tool] + rng.integers(1, 11, n), model.tool_min[tool] - rng.integers(1, 6, n)
        )
        asm["score"][rows] = bad.astype("U10")
        log.add("ASSESSMENT_SCORE_OUT_OF_RANGE", asm["assessment_id"][rows])

    # --- referral-level assessments of a missing or closed referral (own random stream, so the
    # draws of the other defects do not change) -----------------------------------------------
    orng = np.random.default_rng([seed, 3, 3, k])
    n = _how_many(orng, rates, "ORPHAN_ASSESSMENT", n_as, 10**9)
    if n:
        ref = model.ref
        closed = np.flatnonzero(
            ~np.isnat(ref["discharged_at"]) & (ref["discharged_at"] < ms) & ref["_activity"]
        )
        counter = {"ORPHAN_ASSESSMENT": model.next_ids.get("orphan_assessment_parent", 0)}
        parents, is_closed = _orphan_parents(
            orng, "ORPHAN_ASSESSMENT", n, ref["referral_id"][closed], counter
        )
        model.next_ids["orphan_assessment_parent"] = counter["ORPHAN_ASSESSMENT"]
        when = uniform_seconds(orng, np.full(n, ms + DAY), np.full(n, me - DAY))
        pos = np.searchsorted(ref["referral_id"], parents).clip(0, len(ref["referral_id"]) - 1)
        dob = np.where(is_closed, ref["_dob"][pos], to_date(when) - np.timedelta64(40 * 365, "D"))
        tool, score = model._tools_for_age(orng, (to_date(when) - dob) / np.timedelta64(1, "D") / 365.25)
        orphan_as = {
            "assessment_id": model.assign_ids("assessment_id", n),
            "referral_id": parents,
            "intervention_id": np.full(n, -1, dtype=np.int64),
            "tool_snomed": model.tool_ids[tool],
            "score": score.astype("U10"),
            "completed_at": when,
            "clinician_id": orng.integers(1, 30, n).astype(np.int64) * 100 + orng.integers(1, 31, n),
            "_tool": tool,
        }
        month.assessments = concat([asm, {c: orphan_as[c].astype(asm[c].dtype) for c in asm}])
        log.add("ORPHAN_ASSESSMENT", orphan_as["assessment_id"])

    # --- contacts: late-keyed, orphan, duplicate ------------------------------------------------
    ap = month.appointments
    n_ap = len(ap["appointment_id"])
    extra: list[Frame] = []
    ref = model.ref

    n = _how_many(rng, rates, "CONTACT_OUTSIDE_PERIOD", n_ap, 10**9)
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
        pick = rng.integers(0, len(rows), m)
        r = rows[pick]
        service = ref["_service"][r]
        start = model.contact_times(rng, lo[pick], hi[pick], model.community[service])
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

    n = _how_many(rng, rates, "ORPHAN_CONTACT", n_ap, 10**9)
    if n:
        community_teams = np.array(
            [ti for ti, t in enumerate(codes.TEAMS) if codes.SERVICES[t.service].community]
        )
        team = community_teams[rng.integers(0, len(community_teams), n)]
        service = np.array([codes.TEAMS[t].service for t in team])
        start = model.contact_times(rng, np.full(n, ms), np.full(n, me), np.ones(n, dtype=bool))
        orphan_ref = ORPHAN_ID_BASE + 500_000 + model.next_ids.setdefault("orphan_referral", 1) + np.arange(n)
        model.next_ids["orphan_referral"] += n
        orphan = model.make_contacts(
            rng, orphan_ref, team, service, start, np.zeros(n, dtype=bool), np.full(n, me)
        )
        orphan["appointment_id"] = model.assign_ids("appointment_id", n)
        log.add("ORPHAN_CONTACT", orphan["appointment_id"])
        extra.append(orphan)

    n = _how_many(rng, rates, "DUPLICATE_CONTACT_ID", n_ap, n_ap)
    if n:
        rows = np.sort(rng.choice(n_ap, size=n, replace=False))
        dup = take(ap, rows)
        later = dup["recorded_at"] + (rng.integers(3600, 3 * 86400, n)).astype("timedelta64[s]")
        dup["recorded_at"] = np.maximum(np.minimum(later, me - np.timedelta64(1, "s")), dup["recorded_at"])
        dup["clinician_id"] = dup["team_id"].astype(np.int64) * 100 + rng.integers(1, 31, n)
        log.add("DUPLICATE_CONTACT_ID", dup["appointment_id"])
        extra.append(dup)

    if extra:
        month.appointments = concat([ap] + [{c: e[c] for c in ap} for e in extra])

    # --- a formula-like clinician id on a referral-level assessment (own random stream) --------
    _formula_like_text(np.random.default_rng([seed, 3, 5, k]), model, month, rates, log)
    return month


#: Clinician ids keyed with a leading "=" (a spreadsheet paste): valid ``max an20`` values.
FORMULA_LIKE = ("=SUM(A1:A9)", "=1+1", "=B2", "=HCP{id:05d}")


def _formula_like_text(
    rng: np.random.Generator, model: ActivityModel, month: MonthActivity, rates: DefectRates, log: DefectLog
) -> None:
    """CareProfLocalID values a spreadsheet would run, on referral-level assessments (MHS606)
    whose referral and patient carry no defect, so the row is published (escaped in the CSV)."""
    asm = month.assessments
    ref = model.ref
    bad_patients = _defective_keys(log, "patients")
    bad_refs = np.union1d(
        _defective_keys(log, "referrals"), ref["referral_id"][np.isin(ref["patient_id"], bad_patients)]
    )
    ok = (
        (asm["intervention_id"] < 0)
        & ~np.isin(asm["referral_id"], bad_refs)
        & ~np.isin(asm["assessment_id"], _defective_keys(log, "assessments"))
    )
    cand = np.flatnonzero(ok)
    n = _how_many(rng, rates, "FORMULA_LIKE_TEXT", int((asm["intervention_id"] < 0).sum()), len(cand))
    if not n:
        return
    rows = np.sort(rng.choice(cand, size=n, replace=False))
    raw = _raw_column(asm, "clinician_id")
    for r, pick in zip(rows, rng.integers(0, len(FORMULA_LIKE), n), strict=True):
        raw[r] = FORMULA_LIKE[pick].format(id=int(asm["clinician_id"][r]))
    log.add("FORMULA_LIKE_TEXT", asm["assessment_id"][rows])
