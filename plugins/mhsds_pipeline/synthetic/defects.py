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

The rule table, the rates and the defect log are in ``defects_rules.py``; the planters by family
in ``defects_values.py`` (identifiers, codes, scores, duplicate contacts), ``defects_dates.py``
(date order, late-keyed contacts), ``defects_orphans.py``, ``defects_hostile.py`` and
``defects_indirect.py`` (indirect activity, MHS204, on its own random stream). This module
runs them in a fixed order on fixed random streams, so the same seed gives the same defects.
"""

from __future__ import annotations

import numpy as np

from mhsds_pipeline.synthetic.activity import ActivityModel, MonthActivity
from mhsds_pipeline.synthetic.defects_dates import (
    late_contacts,
    plant_date_order_referrals,
    plant_date_order_spells,
    plant_date_order_ward_stays,
)
from mhsds_pipeline.synthetic.defects_hostile import (
    DIAGNOSIS_FREE_TEXT,
    FORMULA_LIKE,
    OVERSIZE_LENGTH,
    POSTCODE_SEPARATORS,
    plant_formula_like_text,
    plant_hostile_values,
    plant_malformed_dates,
)
from mhsds_pipeline.synthetic.defects_indirect import plant_indirect_defects
from mhsds_pipeline.synthetic.defects_orphans import (
    orphan_contacts,
    plant_orphan_assessments,
    plant_orphan_referrals,
    plant_orphans,
)
from mhsds_pipeline.synthetic.defects_rules import EPR_KEY, RULES, DefectLog, DefectRates, Rule
from mhsds_pipeline.synthetic.defects_values import (
    duplicate_contacts,
    plant_assessment_scores,
    plant_patient_defects,
    plant_snomed_codes,
)
from mhsds_pipeline.synthetic.frames import concat, month_start
from mhsds_pipeline.synthetic.scope import Scope
from mhsds_pipeline.synthetic.spine import Spine

__all__ = [
    "DIAGNOSIS_FREE_TEXT",
    "EPR_KEY",
    "FORMULA_LIKE",
    "OVERSIZE_LENGTH",
    "POSTCODE_SEPARATORS",
    "RULES",
    "DefectLog",
    "DefectRates",
    "Rule",
    "plant_indirect_defects",
    "plant_month_defects",
    "plant_spine_defects",
]


def plant_spine_defects(
    spine: Spine, rates: DefectRates, seed: int, log: DefectLog, *, malformed_cells: bool = True
) -> None:
    """Referral, spell, ward-stay and patient defects (in that order: patients come last so
    their rates count the final referral scope), then orphans and hostile values, each family
    after the first on its own random stream. ``malformed_cells``: plant impossible dates too
    (only a SQLite EPR can hold them)."""
    rng = np.random.default_rng([seed, 3, 0])
    scope = Scope(spine.window)
    plant_orphan_referrals(rng, spine, rates, log)
    plant_date_order_referrals(rng, spine, rates, log, scope)
    plant_date_order_spells(rng, spine, rates, log, scope)
    plant_date_order_ward_stays(rng, spine, rates, log, scope)
    plant_patient_defects(rng, spine, rates, log, scope)
    plant_orphans(np.random.default_rng([seed, 3, 2]), spine, rates, log, scope)
    plant_hostile_values(np.random.default_rng([seed, 3, 4]), spine, rates, log, scope)
    if malformed_cells:
        plant_malformed_dates(np.random.default_rng([seed, 3, 6]), spine, rates, log, scope)


def plant_month_defects(
    model: ActivityModel, month: MonthActivity, k: int, rates: DefectRates, seed: int, log: DefectLog
) -> MonthActivity:
    """Mutate/add this month's intervention, assessment and contact defects; returns the month."""
    rng = np.random.default_rng([seed, 3, 1, k])
    plant_snomed_codes(rng, model, month, rates, log)
    plant_assessment_scores(rng, model, month, rates, log)
    # Referral-level assessments of a missing or closed referral, on their own random stream so
    # the draws of the other defects do not change.
    plant_orphan_assessments(np.random.default_rng([seed, 3, 3, k]), model, month, k, rates, log)

    # Contacts: late-keyed, orphan, duplicate (of the month's clean contacts), added together.
    ap = month.appointments
    n_ap = len(ap["appointment_id"])
    me = month_start(model.window.first + k + 1)
    extra = late_contacts(rng, model, n_ap, k, rates, log)
    extra += orphan_contacts(rng, model, n_ap, k, rates, log)
    extra += duplicate_contacts(rng, ap, me, rates, log)
    if extra:
        month.appointments = concat([ap] + [{c: e[c] for c in ap} for e in extra])

    # A formula-like clinician id on a referral-level assessment (own random stream).
    plant_formula_like_text(np.random.default_rng([seed, 3, 5, k]), model, month, rates, log)
    return month
