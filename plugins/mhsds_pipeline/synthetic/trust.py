"""The synthetic trust's reference data: localities, GP practices, commissioners, services,
teams and wards.

The trust is modelled on a county mental health trust of about 800,000 people in four
localities (Herefordshire, South Worcestershire, Wyre Forest, Redditch & Bromsgrove) with 85 GP
practices. Everything here is synthetic: team and ward names are generic, practice and site
codes follow the ODS shape but are invented, postcodes are random units in real postcode
districts. The national code lists the generated rows draw from are in ``codes.py``.

Volumes are per month at scale 1 (one trust-month, ~31,000 care contacts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Patient classes used to keep a person's referrals age-consistent (see spine.py).
CLASS_CYP, CLASS_ADULT, CLASS_OLDER = 0, 1, 2

LOCALITIES: tuple[str, ...] = ("HEREFORDSHIRE", "SOUTH_WORCS", "WYRE_FOREST", "REDDITCH_BROMS")
#: Share of the population per locality (roughly 190k / 310k / 100k / 200k).
LOCALITY_WEIGHTS = np.array([0.24, 0.39, 0.12, 0.25])
#: Real postcode districts per locality (the units generated inside them are random).
POSTCODE_DISTRICTS: tuple[tuple[str, ...], ...] = (
    ("HR1", "HR2", "HR3", "HR4", "HR5", "HR6", "HR7", "HR8", "HR9"),
    ("WR1", "WR2", "WR3", "WR4", "WR5", "WR6", "WR7", "WR8", "WR9", "WR10", "WR11", "WR13", "WR14", "WR15"),
    ("DY10", "DY11", "DY12", "DY13", "DY14"),
    ("B60", "B61", "B96", "B97", "B98"),
)
#: Welsh postcode districts on the trust's border (Powys: LD7 Knighton, LD8 Presteigne; Monmouthshire:
#: NP25 Monmouth). A few Herefordshire and Wyre Forest patients live there: they are not England
#: residents, so the national access measures leave them out (local authority of residence).
BORDER_DISTRICTS: tuple[str, ...] = ("LD7", "LD8", "NP25")
#: Share of Herefordshire / Wyre Forest patients with a Welsh border postcode.
BORDER_RESIDENT_SHARE = {0: 0.02, 2: 0.005}
#: Letters allowed in the last two positions of a postcode (C, I, K, M, O, V are never used).
POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

#: Synthetic GP practice codes (ODS shape: letter + 5 digits) per locality: 25 + 30 + 15 + 15 = 85.
PRACTICES: tuple[tuple[str, ...], ...] = (
    tuple(f"M81{n:03d}" for n in range(601, 626)),
    tuple(f"M85{n:03d}" for n in range(601, 631)),
    tuple(f"M85{n:03d}" for n in range(631, 646)),
    tuple(f"M85{n:03d}" for n in range(646, 661)),
)

COMMISSIONER_HOME = "18C"  # Herefordshire and Worcestershire sub-ICB location
COMMISSIONERS_OUT_OF_AREA = ("15E", "05Q", "05W", "04Y")


@dataclass(frozen=True)
class Service:
    """A kind of service the trust runs: how many referrals it gets and how it behaves.

    ``duration_median_days``/``duration_sigma``: lognormal time from referral to discharge (for
    inpatient services this is the length of stay). ``contacts_per_day``: relative rate of care
    contacts while a referral is open (rescaled so a month has ~31,000 contacts at scale 1).
    ``link_prob``: chance that a new referral belongs to a person already known to the trust
    (crisis -> CMHT, CMHT -> IPS, community -> ward), which makes patients ~0.85 per referral.
    """

    code: str
    service_line: str
    team_type: str
    age_group: str  # CYP | ADULT | ALL (teams.age_group)
    patient_class: int
    new_per_month: float
    duration_median_days: float
    duration_sigma: float
    contacts_per_day: float
    link_prob: float
    age_min: int
    age_max: int
    age_beta: tuple[float, float]
    female_prob: float
    reject_prob: float
    community: bool  # office-hours contacts on weekdays; False = 24/7 service
    team_names: tuple[tuple[str, str | None], ...]  # (team name, locality or None = countywide)
    sources: tuple[tuple[str, float], ...]  # SourceOfReferralMH
    reasons: tuple[tuple[str, float], ...]  # PrimReasonReferralMH
    priorities: tuple[tuple[str, float], ...]  # ClinRespPriorityType
    icd10: tuple[str, ...]
    snomed_dx: tuple[str, ...]
    ward_group: str | None = None  # inpatient services only


_GP = (("A1", 0.7), ("B1", 0.1), ("H1", 0.05), ("C1", 0.05), ("P1", 0.1))
_CYP_SOURCES = (("A1", 0.45), ("F1", 0.2), ("B1", 0.1), ("C1", 0.1), ("H2", 0.05), ("P1", 0.1))
_INPATIENT_SOURCES = (("P1", 0.55), ("H1", 0.25), ("E1", 0.05), ("A1", 0.1), ("I1", 0.05))
_ROUTINE = (("3", 0.8), ("2", 0.17), ("4", 0.03))
_URGENT = (("1", 0.35), ("2", 0.35), ("4", 0.3))

_ADULT_ICD = ("F32.1", "F33.1", "F41.1", "F60.3", "F43.1", "F31.1", "F20.0", "F42.0", "F41.0", "F41.2")
_ADULT_SCT = ("35489007", "370143000", "197480006", "21897009", "20010003", "47505003", "191736004")
_CYP_ICD = ("F32.1", "F41.1", "F90.0", "F84.0", "F43.1", "F91.3", "F93.0", "F41.2")
_CYP_SCT = ("35489007", "197480006", "406506008", "408856003", "47505003")
_OLDER_ICD = ("F00.1", "F01.9", "F03", "F32.1", "F06.7", "F33.1", "F41.1")
_OLDER_SCT = ("52448006", "26929004", "35489007", "197480006")
_PSYCHOSIS_ICD = ("F20.0", "F23.0", "F29", "F25.0", "F31.1", "F20.3")
_PSYCHOSIS_SCT = ("58214004", "69322001", "13746004")
_ED_ICD = ("F50.0", "F50.2", "F50.1", "F50.9")
_ED_SCT = ("56882008", "78004001")

_CAMHS_LOCAL = (
    ("CAMHS Herefordshire", "HEREFORDSHIRE"),
    ("CAMHS South Worcestershire", "SOUTH_WORCS"),
    ("CAMHS Wyre Forest", "WYRE_FOREST"),
    ("CAMHS Redditch and Bromsgrove", "REDDITCH_BROMS"),
)
_CMHT_LOCAL = (
    ("CMHT Herefordshire", "HEREFORDSHIRE"),
    ("CMHT South Worcestershire", "SOUTH_WORCS"),
    ("CMHT Wyre Forest", "WYRE_FOREST"),
    ("CMHT Redditch and Bromsgrove", "REDDITCH_BROMS"),
)

# One line per behaviour group; see Service for the meaning of each field.
# fmt: off
SERVICES: tuple[Service, ...] = (
    Service(
        code="CAMHS_CORE", service_line="CAMHS", team_type="A06", age_group="CYP",
        patient_class=CLASS_CYP, new_per_month=700, duration_median_days=85,
        duration_sigma=1.0, contacts_per_day=0.04, link_prob=0.12,
        age_min=5, age_max=17, age_beta=(3.0, 1.5), female_prob=0.58,
        reject_prob=0.08, community=True,
        team_names=_CAMHS_LOCAL,
        sources=_CYP_SOURCES,
        reasons=(
            ("04", 0.25), ("05", 0.3), ("15", 0.15), ("21", 0.05), ("06", 0.05), ("19", 0.1), ("16", 0.1),
        ),
        priorities=_ROUTINE,
        icd10=_CYP_ICD,
        snomed_dx=_CYP_SCT,
    ),
    Service(
        code="CAMHS_NEURO", service_line="CAMHS", team_type="C04", age_group="CYP",
        patient_class=CLASS_CYP, new_per_month=220, duration_median_days=200,
        duration_sigma=0.8, contacts_per_day=0.008, link_prob=0.2,
        age_min=4, age_max=15, age_beta=(1.5, 1.5), female_prob=0.35,
        reject_prob=0.06, community=True,
        team_names=(("CAMHS Neurodevelopment", None),),
        sources=_CYP_SOURCES,
        reasons=(("24", 0.45), ("25", 0.5), ("26", 0.05)),
        priorities=_ROUTINE,
        icd10=("F90.0", "F84.0", "F84.5"),
        snomed_dx=("406506008", "408856003"),
    ),
    Service(
        code="CAMHS_MHST", service_line="CAMHS", team_type="F01", age_group="CYP",
        patient_class=CLASS_CYP, new_per_month=230, duration_median_days=80,
        duration_sigma=0.6, contacts_per_day=0.05, link_prob=0.1,
        age_min=5, age_max=17, age_beta=(2.0, 2.0), female_prob=0.55,
        reject_prob=0.05, community=True,
        team_names=(("Mental Health Support Team North", None), ("Mental Health Support Team South", None)),
        sources=(("F1", 0.7), ("A1", 0.1), ("B1", 0.1), ("C1", 0.1)),
        reasons=(("05", 0.6), ("04", 0.3), ("19", 0.1)),
        priorities=_ROUTINE,
        icd10=("F41.1", "F32.0", "F93.0"),
        snomed_dx=("197480006",),
    ),
    Service(
        code="CAMHS_ED", service_line="CAMHS", team_type="C10", age_group="CYP",
        patient_class=CLASS_CYP, new_per_month=25, duration_median_days=200,
        duration_sigma=0.7, contacts_per_day=0.12, link_prob=0.2,
        age_min=11, age_max=17, age_beta=(3.0, 2.0), female_prob=0.9,
        reject_prob=0.03, community=True,
        team_names=(("CYP Community Eating Disorder Service", None),),
        sources=_CYP_SOURCES,
        reasons=(("12", 1.0),),
        priorities=(("2", 0.5), ("3", 0.4), ("1", 0.1)),
        icd10=_ED_ICD,
        snomed_dx=_ED_SCT,
    ),
    Service(
        code="ADULT_CMHT", service_line="ADULT", team_type="A06", age_group="ADULT",
        patient_class=CLASS_ADULT, new_per_month=650, duration_median_days=110,
        duration_sigma=1.1, contacts_per_day=0.035, link_prob=0.25,
        age_min=18, age_max=64, age_beta=(1.8, 2.2), female_prob=0.52,
        reject_prob=0.06, community=True,
        team_names=_CMHT_LOCAL,
        sources=_GP,
        reasons=(
            ("04", 0.25), ("05", 0.15), ("14", 0.12), ("11", 0.08), ("02", 0.15), ("03", 0.1), ("15", 0.1),
            ("06", 0.05),
        ),
        priorities=_ROUTINE,
        icd10=_ADULT_ICD,
        snomed_dx=_ADULT_SCT,
    ),
    Service(
        code="ADULT_PCMH", service_line="ADULT", team_type="A05", age_group="ADULT",
        patient_class=CLASS_ADULT, new_per_month=900, duration_median_days=50,
        duration_sigma=0.8, contacts_per_day=0.04, link_prob=0.1,
        age_min=18, age_max=75, age_beta=(1.8, 2.5), female_prob=0.56,
        reject_prob=0.06, community=True,
        team_names=(
            ("Primary Care Mental Health Herefordshire", "HEREFORDSHIRE"),
            ("Primary Care Mental Health Worcestershire", None),
        ),
        sources=_GP,
        reasons=(("04", 0.4), ("05", 0.4), ("11", 0.1), ("19", 0.1)),
        priorities=_ROUTINE,
        icd10=_ADULT_ICD,
        snomed_dx=_ADULT_SCT,
    ),
    Service(
        code="ADULT_ED", service_line="ADULT", team_type="C10", age_group="ADULT",
        patient_class=CLASS_ADULT, new_per_month=30, duration_median_days=250,
        duration_sigma=0.8, contacts_per_day=0.08, link_prob=0.15,
        age_min=18, age_max=50, age_beta=(1.2, 3.0), female_prob=0.88,
        reject_prob=0.05, community=True,
        team_names=(("Adult Community Eating Disorder Service", None),),
        sources=_GP,
        reasons=(("12", 1.0),),
        priorities=_ROUTINE,
        icd10=_ED_ICD,
        snomed_dx=_ED_SCT,
    ),
    Service(
        code="OLDER_CMHT", service_line="OLDER_ADULT", team_type="A07", age_group="ADULT",
        patient_class=CLASS_OLDER, new_per_month=220, duration_median_days=170,
        duration_sigma=0.9, contacts_per_day=0.03, link_prob=0.2,
        age_min=65, age_max=95, age_beta=(1.5, 2.5), female_prob=0.58,
        reject_prob=0.04, community=True,
        team_names=(
            ("Older Adult CMHT Herefordshire", "HEREFORDSHIRE"), ("Older Adult CMHT Worcestershire", None),
        ),
        sources=_GP,
        reasons=(("08", 0.5), ("04", 0.3), ("05", 0.2)),
        priorities=_ROUTINE,
        icd10=_OLDER_ICD,
        snomed_dx=_OLDER_SCT,
    ),
    Service(
        code="MEMORY", service_line="OLDER_ADULT", team_type="A17", age_group="ADULT",
        patient_class=CLASS_OLDER, new_per_month=300, duration_median_days=110,
        duration_sigma=0.7, contacts_per_day=0.015, link_prob=0.1,
        age_min=65, age_max=95, age_beta=(2.5, 2.5), female_prob=0.6,
        reject_prob=0.03, community=True,
        team_names=(("Memory Assessment Service", None),),
        sources=_GP,
        reasons=(("08", 1.0),),
        priorities=_ROUTINE,
        icd10=("F00.1", "F01.9", "F03", "F06.7"),
        snomed_dx=("52448006", "26929004"),
    ),
    Service(
        code="PERINATAL", service_line="PERINATAL", team_type="C02", age_group="ADULT",
        patient_class=CLASS_ADULT, new_per_month=110, duration_median_days=160,
        duration_sigma=0.6, contacts_per_day=0.07, link_prob=0.0,
        age_min=16, age_max=45, age_beta=(3.0, 3.0), female_prob=1.0,
        reject_prob=0.05, community=True,
        team_names=(("Specialist Community Perinatal Mental Health", None),),
        sources=(("A1", 0.5), ("H2", 0.3), ("B1", 0.05), ("P1", 0.15)),
        reasons=(("13", 0.85), ("27", 0.15)),
        priorities=(("3", 0.6), ("2", 0.4)),
        icd10=("F53.0", "F32.1", "F41.1", "F43.1"),
        snomed_dx=("58703003", "35489007"),
    ),
    Service(
        code="EIP", service_line="EIP", team_type="A14", age_group="ALL",
        patient_class=CLASS_ADULT, new_per_month=55, duration_median_days=500,
        duration_sigma=0.6, contacts_per_day=0.09, link_prob=0.15,
        age_min=14, age_max=65, age_beta=(1.3, 4.0), female_prob=0.38,
        reject_prob=0.05, community=True,
        team_names=(
            ("Early Intervention in Psychosis North", None),
            ("Early Intervention in Psychosis South", None),
        ),
        sources=(("A1", 0.4), ("P1", 0.3), ("H1", 0.15), ("E1", 0.05), ("B1", 0.1)),
        reasons=(("01", 1.0),),
        priorities=(("2", 0.7), ("3", 0.3)),
        icd10=_PSYCHOSIS_ICD,
        snomed_dx=_PSYCHOSIS_SCT,
    ),
    Service(
        code="CRISIS", service_line="CRISIS", team_type="A02", age_group="ALL",
        patient_class=CLASS_ADULT, new_per_month=480, duration_median_days=21,
        duration_sigma=0.7, contacts_per_day=0.35, link_prob=0.35,
        age_min=18, age_max=80, age_beta=(1.5, 3.0), female_prob=0.52,
        reject_prob=0.0, community=False,
        team_names=(
            ("Crisis Resolution and Home Treatment Herefordshire", "HEREFORDSHIRE"),
            ("Crisis Resolution and Home Treatment Worcestershire", None),
        ),
        sources=(("A1", 0.3), ("P1", 0.3), ("H1", 0.2), ("B1", 0.1), ("E1", 0.1)),
        reasons=(("18", 0.8), ("15", 0.2)),
        priorities=_URGENT,
        icd10=_ADULT_ICD,
        snomed_dx=_ADULT_SCT,
    ),
    Service(
        code="CRISIS_LINE", service_line="CRISIS", team_type="A19", age_group="ALL",
        patient_class=CLASS_ADULT, new_per_month=850, duration_median_days=1.5,
        duration_sigma=0.8, contacts_per_day=0.6, link_prob=0.15,
        age_min=16, age_max=85, age_beta=(1.5, 3.0), female_prob=0.55,
        reject_prob=0.0, community=False,
        team_names=(("24/7 Mental Health Crisis Line", None),),
        sources=(("B1", 0.8), ("A1", 0.1), ("E1", 0.1)),
        reasons=(("18", 1.0),),
        priorities=_URGENT,
        icd10=_ADULT_ICD,
        snomed_dx=_ADULT_SCT,
    ),
    Service(
        code="IPS", service_line="IPS", team_type="D05", age_group="ADULT",
        patient_class=CLASS_ADULT, new_per_month=55, duration_median_days=200,
        duration_sigma=0.6, contacts_per_day=0.07, link_prob=0.6,
        age_min=18, age_max=64, age_beta=(1.5, 2.5), female_prob=0.45,
        reject_prob=0.05, community=True,
        team_names=(("Individual Placement and Support", None),),
        sources=(("P1", 0.8), ("B1", 0.1), ("A1", 0.1)),
        reasons=(("31", 1.0),),
        priorities=_ROUTINE,
        icd10=("F32.1", "F20.0", "F41.1", "F31.1"),
        snomed_dx=("35489007", "58214004"),
    ),
    Service(
        code="LIAISON", service_line="LIAISON", team_type="A11", age_group="ALL",
        patient_class=CLASS_ADULT, new_per_month=650, duration_median_days=1.5,
        duration_sigma=0.9, contacts_per_day=0.8, link_prob=0.2,
        age_min=18, age_max=90, age_beta=(1.5, 2.2), female_prob=0.55,
        reject_prob=0.0, community=False,
        team_names=(
            ("Mental Health Liaison Worcestershire", None),
            ("Mental Health Liaison Herefordshire", "HEREFORDSHIRE"),
        ),
        sources=(("H1", 0.85), ("H2", 0.15)),
        reasons=(("15", 0.4), ("18", 0.3), ("04", 0.15), ("09", 0.15)),
        priorities=_URGENT,
        icd10=_ADULT_ICD,
        snomed_dx=_ADULT_SCT,
    ),
    Service(
        code="IP_ACUTE", service_line="INPATIENT", team_type="A10", age_group="ADULT",
        patient_class=CLASS_ADULT, new_per_month=75, duration_median_days=20.5,
        duration_sigma=0.9, contacts_per_day=0.1, link_prob=0.7,
        age_min=18, age_max=64, age_beta=(1.5, 2.0), female_prob=0.48,
        reject_prob=0.0, community=False, ward_group="ACUTE",
        team_names=(("Adult Acute Inpatient Service", None),),
        sources=_INPATIENT_SOURCES,
        reasons=(("18", 0.5), ("02", 0.25), ("03", 0.15), ("04", 0.1)),
        priorities=(("1", 0.6), ("2", 0.4)),
        icd10=_PSYCHOSIS_ICD + ("F32.3", "F60.3"),
        snomed_dx=_PSYCHOSIS_SCT,
    ),
    Service(
        code="IP_OLDER", service_line="INPATIENT", team_type="A10", age_group="ADULT",
        patient_class=CLASS_OLDER, new_per_month=20, duration_median_days=33,
        duration_sigma=0.9, contacts_per_day=0.1, link_prob=0.7,
        age_min=65, age_max=95, age_beta=(1.5, 2.5), female_prob=0.55,
        reject_prob=0.0, community=False, ward_group="OLDER",
        team_names=(("Older Adult Inpatient Service", None),),
        sources=_INPATIENT_SOURCES,
        reasons=(("08", 0.5), ("04", 0.3), ("18", 0.2)),
        priorities=(("1", 0.5), ("2", 0.5)),
        icd10=_OLDER_ICD,
        snomed_dx=_OLDER_SCT,
    ),
    Service(
        code="IP_PICU", service_line="INPATIENT", team_type="A10", age_group="ADULT",
        patient_class=CLASS_ADULT, new_per_month=13, duration_median_days=14.6,
        duration_sigma=0.9, contacts_per_day=0.1, link_prob=0.8,
        age_min=18, age_max=55, age_beta=(1.5, 2.5), female_prob=0.3,
        reject_prob=0.0, community=False, ward_group="PICU",
        team_names=(("Psychiatric Intensive Care Service", None),),
        sources=_INPATIENT_SOURCES,
        reasons=(("18", 0.6), ("02", 0.4)),
        priorities=(("1", 1.0),),
        icd10=_PSYCHOSIS_ICD,
        snomed_dx=_PSYCHOSIS_SCT,
    ),
    Service(
        code="IP_REHAB", service_line="INPATIENT", team_type="A10", age_group="ADULT",
        patient_class=CLASS_ADULT, new_per_month=2.6, duration_median_days=110,
        duration_sigma=0.9, contacts_per_day=0.1, link_prob=0.9,
        age_min=18, age_max=64, age_beta=(1.5, 2.0), female_prob=0.35,
        reject_prob=0.0, community=False, ward_group="REHAB",
        team_names=(("Inpatient Rehabilitation Service", None),),
        sources=(("P1", 1.0),),
        reasons=(("02", 1.0),),
        priorities=(("3", 1.0),),
        icd10=_PSYCHOSIS_ICD,
        snomed_dx=_PSYCHOSIS_SCT,
    ),
    Service(
        code="IP_CYP", service_line="INPATIENT", team_type="A10", age_group="CYP",
        patient_class=CLASS_CYP, new_per_month=6.4, duration_median_days=30,
        duration_sigma=0.9, contacts_per_day=0.1, link_prob=0.6,
        age_min=12, age_max=17, age_beta=(3.0, 1.5), female_prob=0.7,
        reject_prob=0.0, community=False, ward_group="CYP",
        team_names=(("Young Persons Inpatient Service", None),),
        sources=_INPATIENT_SOURCES,
        reasons=(("18", 0.4), ("12", 0.3), ("15", 0.3)),
        priorities=(("1", 0.6), ("2", 0.4)),
        icd10=_CYP_ICD + _ED_ICD,
        snomed_dx=_CYP_SCT,
    ),
)
# fmt: on
SERVICE_INDEX = {s.code: i for i, s in enumerate(SERVICES)}


@dataclass(frozen=True)
class Team:
    team_id: str
    name: str
    service: int  # index into SERVICES
    locality: int | None


def build_teams() -> tuple[Team, ...]:
    teams: list[Team] = []
    for si, svc in enumerate(SERVICES):
        for name, loc in svc.team_names:
            teams.append(Team(f"T{len(teams) + 1:03d}", name, si, LOCALITIES.index(loc) if loc else None))
    return tuple(teams)


TEAMS: tuple[Team, ...] = build_teams()


def team_for_locality() -> np.ndarray:
    """``[service, locality] -> team index``: the locality's own team, else a countywide one."""
    out = np.full((len(SERVICES), len(LOCALITIES)), -1, dtype=np.int32)
    for ti, team in enumerate(TEAMS):
        if team.locality is not None:
            out[team.service, team.locality] = ti
    for si in range(len(SERVICES)):
        countywide = [ti for ti, t in enumerate(TEAMS) if t.service == si and t.locality is None]
        for li in range(len(LOCALITIES)):
            if out[si, li] < 0:
                # Several countywide teams (e.g. EIP North/South): split localities between them.
                out[si, li] = countywide[li % len(countywide)]
    return out


@dataclass(frozen=True)
class Ward:
    ward_code: str
    name: str
    site_code: str
    patient_class: str
    beds: int
    group: str


#: ~160 beds: at ~75% occupancy and ~32 days mean stay, ~230-250 spells touch a month.
WARDS: tuple[Ward, ...] = (
    Ward("WRD01", "Acute Ward 1 (mixed adult)", "R1AX1", "200", 22, "ACUTE"),
    Ward("WRD02", "Acute Ward 2 (female adult)", "R1AX1", "200", 22, "ACUTE"),
    Ward("WRD03", "Acute Ward 3 (male adult)", "R1AX1", "200", 22, "ACUTE"),
    Ward("WRD04", "Acute Ward 4 (Herefordshire adult)", "R1AX2", "200", 20, "ACUTE"),
    Ward("WRD05", "Older Adult Ward 1 (functional)", "R1AX1", "201", 18, "OLDER"),
    Ward("WRD06", "Older Adult Ward 2 (organic)", "R1AX3", "201", 18, "OLDER"),
    Ward("WRD07", "Psychiatric Intensive Care Unit", "R1AX1", "202", 10, "PICU"),
    Ward("WRD08", "Rehabilitation Unit", "R1AX3", "212", 16, "REHAB"),
    Ward("WRD09", "Young Persons Unit", "R1AX2", "301", 12, "CYP"),
)
WARD_GROUPS = ("ACUTE", "OLDER", "PICU", "REHAB", "CYP")
