"""The planted-defect rules (source_contract.md), their rates, the log of planted defects the
ground truth is written from, and the helpers every planter shares.

A planter chooses its eligible rows, lets :func:`pick` draw how many defects the rule gets this
month (:func:`how_many`) and which candidate rows carry them, mutates those rows (or adds rows
made from them) and records the defective rows' EPR keys in the :class:`DefectLog`.
:func:`rows_per_month` does the picking for defects a row keeps in every month it is extracted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np

from mhsds_pipeline.synthetic.frames import Frame, month_start
from mhsds_pipeline.synthetic.spine import Window


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
        # MHS204IndirectActivity: one defect of each kind of v6 rule (Blank, Format, National
        # Code, AV) and an orphan, planted on their own random stream so that the defects above
        # do not move.
        Rule(
            "INDIRECT_DATE_MISSING",
            "indirect_activities",
            "start_at",
            "mhs204_indirect_activity",
            "IndirectActDate",
        ),
        Rule(
            "INDIRECT_DURATION_FORMAT",
            "indirect_activities",
            "duration_minutes",
            "mhs204_indirect_activity",
            "DurationIndirectAct",
        ),
        Rule(
            "INDIRECT_PERSON_CONSULTED_INVALID",
            "indirect_activities",
            "person_consulted",
            "mhs204_indirect_activity",
            "IndActPersCons",
        ),
        Rule(
            "INDIRECT_SNOMED_CHECK_DIGIT",
            "indirect_activities",
            "snomed_procedure",
            "mhs204_indirect_activity",
            "IndActProcedure",
        ),
        Rule(
            "INDIRECT_OUTSIDE_PERIOD",
            "indirect_activities",
            "start_at",
            "mhs204_indirect_activity",
            "IndirectActDate",
        ),
        Rule(
            "ORPHAN_INDIRECT_ACTIVITY",
            "indirect_activities",
            "referral_id",
            "mhs204_indirect_activity",
            "ServiceRequestID",
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
    "indirect_activities": "indirect_activity_id",
    "assessments": "assessment_id",
    "admissions": "admission_id",
    "ward_movements": "ward_stay_id",
    "diagnoses": "diagnosis_id",
    # referral_teams has a composite key: its defects are logged by row number (generator)
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
    the rate); the month's referral-level assessments (FORMULA_LIKE_TEXT). Indirect activity
    (INDIRECT_*, ORPHAN_INDIRECT_ACTIVITY): the month's indirect activities.
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
    indirect_date_missing: float = 0.002
    indirect_duration_format: float = 0.002
    indirect_person_consulted_invalid: float = 0.003
    indirect_snomed_check_digit: float = 0.002
    indirect_outside_period: float = 0.004
    orphan_indirect_activity: float = 0.002
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


def how_many(rng: np.random.Generator, rates: DefectRates, rule: str, eligible: int, candidates: int) -> int:
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


def pick(
    rng: np.random.Generator,
    rates: DefectRates,
    rule: str,
    eligible: int,
    candidates: np.ndarray,
    have: int = 0,
) -> np.ndarray:
    """Candidate rows to carry ``rule`` this month, in the order drawn (empty if none).

    ``eligible``: the month's eligible rows the rate applies to; ``have``: how many of them carry
    the defect already (planted in an earlier month), which only the missing ones are added to.
    """
    add = max(0, how_many(rng, rates, rule, eligible, have + len(candidates)) - have)
    if not add:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(candidates, size=min(add, len(candidates)), replace=False)


def rows_per_month(
    rng: np.random.Generator, rates: DefectRates, rule: str, mask: np.ndarray, ok: np.ndarray, months: int
) -> np.ndarray:
    """Rows (``ok`` ones) for a defect kept by a row in every month it is extracted (``mask``: a
    bit per month): each month adds rows until the month's extract holds the rule's rate (or
    floor). Returns the rows in ascending order."""
    mine = np.zeros(len(mask), dtype=bool)
    for k in range(months):
        in_k = ((mask >> np.uint64(k)) & np.uint64(1)).astype(bool)
        cand = np.flatnonzero(in_k & ok & ~mine)
        mine[pick(rng, rates, rule, int(in_k.sum()), cand, have=int((mine & in_k).sum()))] = True
    return np.flatnonzero(mine)


def each_month(window: Window) -> Iterator[tuple[int, np.datetime64, np.datetime64]]:
    """``(k, start, end)`` of each reporting period of the window."""
    for k in range(window.months):
        yield k, month_start(window.first + k), month_start(window.first + k + 1)


def defective_keys(log: DefectLog, table: str) -> np.ndarray:
    """EPR keys of ``table``'s rows that already carry a defect (sorted, unique)."""
    return np.array(sorted({key for _r, t, key, _b in log.rows if t == table}), dtype=np.int64)


def raw_column(frame: Frame, column: str) -> np.ndarray:
    """The frame's ``_raw_<column>`` override (None = write the generated value)."""
    name = f"_raw_{column}"
    if name not in frame:
        frame[name] = np.full(len(frame[column]), None, dtype=object)
    return frame[name]
