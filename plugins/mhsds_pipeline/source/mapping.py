"""Which MHSDS tables each EPR table becomes: the source contract's map onto MHSDS.

:data:`SOURCES` states, once, the MHSDS tables (dbt models) that each EPR table's rows become,
one MHSDS row per EPR row; :data:`LOOKUPS` are the EPR tables read only to enrich other rows.
The dbt staging models do the mapping; this map is what the rest of the pipeline knows of it:
the reconciliation invariant (:mod:`mhsds_pipeline.quality.reconcile`: every extracted row is
published or quarantined) and the rule an unreadable source cell is quarantined under
(:mod:`mhsds_pipeline.source_cells`). A trust whose EPR splits or merges tables differently
edits it here, beside the schema (:mod:`mhsds_pipeline.source.schema`).

Plain data: this module imports nothing, so anything may import it without a circle.
"""

from __future__ import annotations

#: EPR table -> the MHSDS tables (dbt models) its rows become, one MHSDS row per EPR row.
SOURCES: dict[str, tuple[str, ...]] = {
    "teams": ("mhs902_service_team_details",),
    "patients": ("mhs001_mpi",),
    "gp_registrations": ("mhs002_gp",),
    "referrals": ("mhs101_referral",),
    "referral_teams": ("mhs102_other_service_type",),
    "appointments": ("mhs201_care_contact",),
    "interventions": ("mhs202_care_activity",),
    "indirect_activities": ("mhs204_indirect_activity",),
    "admissions": ("mhs501_hosp_prov_spell",),
    "ward_movements": ("mhs502_ward_stay",),
    "diagnoses": ("mhs604_prim_diag", "mhs605_sec_diag"),
    "assessments": ("mhs606_coded_score_assessment_refer", "mhs607_coded_score_assessment_act"),
}
# The tables built from NHS England's rules file: one EPR table per MHSDS table (schema_v6).
from mhsds_pipeline.source.schema_v6 import epr_to_model as _v6_models  # noqa: E402

SOURCES.update({epr: (model,) for epr, model in _v6_models().items()})

#: EPR tables read only to enrich other rows (no MHSDS rows of their own).
LOOKUPS: tuple[str, ...] = ("wards",)
