"""Schema of the clinical system (the "EPR") that the pipeline extracts from: the source contract.

The extract (``mhsds_pipeline.extract``), the warehouse load and the dbt sources
(``dbt_project/models/staging/epr/_epr__sources.yml``) read these tables and columns; the
synthetic EPR (``mhsds_pipeline.synthetic``) is generated into them. A trust mapping its own
EPR presents it in this shape (see docs/source_contract.md).

This is deliberately *not* MHSDS-shaped: it looks like a mental health trust's electronic
patient record, with its own table and column names, so that the dbt project does a real
mapping job. Like many legacy EPRs it declares no primary or foreign keys on business
identifiers: duplicates and orphans can exist in the source (the generator plants some) and
the pipeline must find them rather than have the database hide them.

Codes held here are mostly national codes already (EPRs commonly store the national code
alongside a local description); the exceptions are noted per column.

The same metadata creates the source in SQLite (embedded default) and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Index, Integer, MetaData, String, Table

metadata = MetaData()

#: Trust teams. ``team_type_code`` is the national SERVICE OR TEAM TYPE (MENTAL HEALTH) code
#: (A02, A14, C02, D05, ...); ``service_line`` is the trust's own service line name.
teams = Table(
    "teams",
    metadata,
    Column("team_id", String(20), nullable=False),
    Column("team_name", String(100), nullable=False),
    Column(
        "service_line", String(30), nullable=False
    ),  # CAMHS, ADULT, OLDER_ADULT, PERINATAL, EIP, CRISIS, IPS, LIAISON, INPATIENT
    Column("team_type_code", String(3), nullable=False),
    Column(
        "age_group", String(5), nullable=False
    ),  # CYP | ADULT | ALL (local code; mapped to ServTeamIntAgeGroup)
    Column("active_from", Date, nullable=False),
    Column("active_to", Date),
)

#: Inpatient wards. ``patient_class`` default is the MH ADMITTED PATIENT CLASSIFICATION of the ward.
wards = Table(
    "wards",
    metadata,
    Column("ward_code", String(12), nullable=False),
    Column("ward_name", String(100), nullable=False),
    Column("site_code", String(9), nullable=False),
    Column("patient_class", String(3), nullable=False),  # 200-213 / 300-311
    Column("beds", Integer, nullable=False),
)

patients = Table(
    "patients",
    metadata,
    Column("patient_id", String(20), nullable=False),  # local patient id, e.g. P0000123
    Column("nhs_number", String(10)),  # synthetic, 999 test range only
    Column("nhs_number_status", String(2)),  # NHS NUMBER STATUS INDICATOR CODE 01..08
    Column("date_of_birth", Date),
    Column("postcode", String(10)),  # 8 + room for a planted line break (CR LF)
    Column("gender_identity", String(1)),  # GenderIDCode 1,2,3,4,Z,X
    Column("stated_gender", String(1)),  # Person stated gender 1,2,9,X
    Column("ethnicity", String(2)),  # ETHNIC CATEGORY A..S, Z, 99
    Column("preferred_language", String(4)),  # ISO 639-1 style, e.g. en, pl, ro
    Column("marital_status", String(1)),
    Column("date_of_death", Date),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

gp_registrations = Table(
    "gp_registrations",
    metadata,
    Column("patient_id", String(20), nullable=False),
    Column("practice_code", String(6), nullable=False),  # ODS GP practice code, e.g. M81001
    Column("registered_on", Date),
    Column("deregistered_on", Date),
)

referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", String(20), nullable=False),  # becomes ServiceRequestID
    Column("patient_id", String(20), nullable=False),
    Column("team_id", String(20), nullable=False),  # primary team -> CareProfTeamLocalID
    Column("received_at", DateTime, nullable=False),
    Column("source_of_referral", String(2)),  # SourceOfReferralMH
    Column("primary_reason", String(2)),  # PrimReasonReferralMH
    Column("priority", String(1)),  # ClinRespPriorityType 1..4
    Column(
        "commissioner_code", String()
    ),  # OrgIDComm (e.g. 18C); unbounded: a 120,000-character value is planted
    Column("discharged_at", DateTime),
    Column("rejected_on", Date),
    Column("reject_reason", String(2)),
    Column("closure_reason", String(2)),
    Column("updated_at", DateTime, nullable=False),
)

#: Other teams involved in a referral (MHS102OtherServiceType).
referral_teams = Table(
    "referral_teams",
    metadata,
    Column("referral_id", String(20), nullable=False),
    Column("team_id", String(20), nullable=False),
    Column("assigned_on", Date, nullable=False),
    Column("closed_on", Date),
    Column("closure_reason", String(2)),
    Column("rejected_on", Date),
    Column("reject_reason", String(2)),
)

#: Appointments = care contacts (MHS201). ``recorded_at`` is when the row was entered; a
#: contact keyed in late (recorded in one month, dated in an earlier one) is extracted with
#: the month it was recorded in, as an incremental extract would.
appointments = Table(
    "appointments",
    metadata,
    Column("appointment_id", String(20), nullable=False),  # CareContactID
    Column("referral_id", String(20), nullable=False),
    Column("team_id", String(20), nullable=False),
    Column("clinician_id", String(20)),
    Column("start_at", DateTime, nullable=False),  # CareContDate + CareContTime
    Column("duration_minutes", Integer),
    Column("consultation_type", String(2)),  # ConsType 01 initial / 02 follow-up
    Column("contact_mechanism", String(2)),  # ConsMechanismMH 01,02,04,05,09-13,98
    Column("location_type", String(3)),  # ActLocTypeCode (e.g. A01 home, B01 clinic...)
    Column("attendance", String(1)),  # AttendStatus 2..7
    Column("cancelled_on", Date),
    Column("cancellation_reason", String(2)),
    Column("recorded_at", DateTime, nullable=False),
)

#: Interventions = care activities (MHS202) with a SNOMED CT procedure code.
interventions = Table(
    "interventions",
    metadata,
    Column("intervention_id", String(24), nullable=False),  # CareActID
    Column("appointment_id", String(20), nullable=False),
    Column("snomed_procedure", String(18)),  # Procedure (SNOMED CT)
    Column("finding_scheme", String(2)),  # FindSchemeInUse 01 ICD-10 / 04 SNOMED CT
    Column("finding_code", String(18)),
    Column("duration_minutes", Integer),
    Column("recorded_at", DateTime, nullable=False),
)

#: Indirect activities (MHS204IndirectActivity): work for a referral without the patient present,
#: e.g. a consultation with the child's school, the GP or a social worker. ``team_id`` is the team
#: that did it (the referral's own team or another team involved); ``start_at`` is NULL when the
#: EPR holds no date for it (the row is then extracted with the month it was keyed in).
indirect_activities = Table(
    "indirect_activities",
    metadata,
    Column("indirect_activity_id", String(24), nullable=False),  # EPR key (no MHSDS identifier)
    Column("referral_id", String(20), nullable=False),
    Column("team_id", String(20)),  # -> OtherCareProfTeamLocalID
    Column("clinician_id", String(20)),  # -> CareProfLocalID
    Column("start_at", DateTime),  # IndirectActDate + IndirectActTime
    Column("duration_minutes", Integer),  # DurationIndirectAct
    Column("person_consulted", String(2)),  # IndActPersCons
    Column("snomed_procedure", String(18)),  # IndActProcedure (SNOMED CT)
    Column("finding_scheme", String(2)),  # FindSchemeInUse 01 ICD-10 / 04 SNOMED CT
    Column("finding_code", String(18)),
    Column("recorded_at", DateTime, nullable=False),
)

#: Scored assessments. ``intervention_id`` set -> activity level (MHS607), else referral
#: level (MHS606).
assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(24), nullable=False),
    Column("referral_id", String(20), nullable=False),
    Column("intervention_id", String(24)),
    Column("tool_snomed", String(18), nullable=False),  # CodedAssToolType
    Column("score", String(10)),  # PersScore (kept as text, as the EPR holds it)
    Column("completed_at", DateTime, nullable=False),
    Column("clinician_id", String(20)),
)

#: Admissions = hospital provider spells (MHS501).
admissions = Table(
    "admissions",
    metadata,
    Column("admission_id", String(20), nullable=False),  # HospProvSpellID
    Column("referral_id", String(20), nullable=False),
    Column("decided_to_admit_at", DateTime),
    Column("admitted_at", DateTime, nullable=False),
    Column("admission_source", String(2)),  # SourceAdmMHHospProvSpell
    Column("admission_method", String(2)),  # MethAdmMHHospProvSpell
    Column("planned_discharge_on", Date),
    Column("discharged_at", DateTime),
    Column("discharge_method", String(2)),
    Column("discharge_destination", String(2)),
)

#: Ward movements = ward stays (MHS502).
ward_movements = Table(
    "ward_movements",
    metadata,
    Column("ward_stay_id", String(24), nullable=False),  # WardStayID
    Column("admission_id", String(20), nullable=False),
    Column("ward_code", String(12), nullable=False),
    Column("start_at", DateTime, nullable=False),
    Column("end_at", DateTime),
    Column("patient_class", String(3)),  # MHAdmittedPatientClass
)

#: Diagnoses recorded against a referral. ``scheme`` is the national DIAGNOSIS SCHEME IN USE
#: code (02 ICD-10, 06 SNOMED CT); ``rank`` is local: P primary, S secondary.
diagnoses = Table(
    "diagnoses",
    metadata,
    Column("diagnosis_id", String(24), nullable=False),
    Column("referral_id", String(20), nullable=False),
    Column("scheme", String(2), nullable=False),
    Column("code", String(18), nullable=False),
    Column("rank", String(1), nullable=False),
    Column("diagnosed_at", DateTime, nullable=False),
)

# Indexes an EPR reporting replica would carry: lookups by id and the date columns the monthly
# extract filters on (non-unique: the source does not enforce keys).
Index("ix_patients_patient_id", patients.c.patient_id)
Index("ix_gp_registrations_patient_id", gp_registrations.c.patient_id)
Index("ix_referrals_referral_id", referrals.c.referral_id)
Index("ix_referrals_received_at", referrals.c.received_at)
Index("ix_referral_teams_referral_id", referral_teams.c.referral_id)
Index("ix_appointments_start_at", appointments.c.start_at)
Index("ix_appointments_recorded_at", appointments.c.recorded_at)
Index("ix_interventions_appointment_id", interventions.c.appointment_id)
Index("ix_indirect_activities_start_at", indirect_activities.c.start_at)
Index("ix_indirect_activities_recorded_at", indirect_activities.c.recorded_at)
Index("ix_assessments_intervention_id", assessments.c.intervention_id)
Index("ix_assessments_referral_id", assessments.c.referral_id)
Index("ix_admissions_referral_id", admissions.c.referral_id)
Index("ix_ward_movements_admission_id", ward_movements.c.admission_id)
Index("ix_diagnoses_referral_id", diagnoses.c.referral_id)

#: Extraction order: reference tables first, then parents before children.
TABLE_NAMES: tuple[str, ...] = (
    "teams",
    "wards",
    "patients",
    "gp_registrations",
    "referrals",
    "referral_teams",
    "appointments",
    "interventions",
    "indirect_activities",
    "assessments",
    "admissions",
    "ward_movements",
    "diagnoses",
)

#: Key columns per EPR table (the row's identity; not enforced by the source). The extract orders
#: each table by them (then by every other column, see :mod:`mhsds_pipeline.source.scope`) so the
#: landing files are deterministic even where the source holds duplicate keys; a key cell that
#: cannot be read stops the extract (the row cannot be quarantined or traced without it).
EPR_KEYS: dict[str, tuple[str, ...]] = {
    "teams": ("team_id",),
    "wards": ("ward_code",),
    "patients": ("patient_id",),
    "gp_registrations": ("patient_id", "practice_code", "registered_on"),
    "referrals": ("referral_id",),
    "referral_teams": ("referral_id", "team_id"),
    "appointments": ("appointment_id",),
    "interventions": ("intervention_id",),
    "indirect_activities": ("indirect_activity_id",),
    "assessments": ("assessment_id",),
    "admissions": ("admission_id",),
    "ward_movements": ("ward_stay_id",),
    "diagnoses": ("diagnosis_id",),
}

# The EPR tables of the MHSDS tables built from NHS England's rules file (source/schema_v6.py):
# extracted after the tables above (their parents), each keyed by its own record_id.
from mhsds_pipeline.source import schema_v6 as _v6  # noqa: E402

V6_TABLES: dict[str, Table] = _v6.define(metadata)
TABLE_NAMES = TABLE_NAMES + tuple(V6_TABLES)
EPR_KEYS.update({name: (_v6.EPR_KEY_COLUMN,) for name in V6_TABLES})
