"""Code lists of the synthetic EPR (mhsds.md section 4) and the reference seeds it reads.

Valid SNOMED CT intervention codes and assessment tools are *not* listed here: they are read
from the dbt seeds (the single source of truth shared with the quality gate), see
:func:`load_intervention_valueset` and :func:`load_assessment_tools`.

The synthetic trust itself (localities, practices, commissioners, services, teams, wards) is in
``trust.py``; its names are re-exported here because code outside this package (the finance
extract generator, tests) reads them as ``codes.SERVICES``, ``codes.TEAMS``, ...
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# Re-exported (``name as name``) for importers of ``codes`` outside this package.
from mhsds_pipeline.synthetic.trust import (
    CLASS_ADULT as CLASS_ADULT,
)
from mhsds_pipeline.synthetic.trust import (
    CLASS_CYP as CLASS_CYP,
)
from mhsds_pipeline.synthetic.trust import (
    CLASS_OLDER as CLASS_OLDER,
)
from mhsds_pipeline.synthetic.trust import (
    COMMISSIONER_HOME as COMMISSIONER_HOME,
)
from mhsds_pipeline.synthetic.trust import (
    COMMISSIONERS_OUT_OF_AREA as COMMISSIONERS_OUT_OF_AREA,
)
from mhsds_pipeline.synthetic.trust import (
    LOCALITIES as LOCALITIES,
)
from mhsds_pipeline.synthetic.trust import (
    LOCALITY_WEIGHTS as LOCALITY_WEIGHTS,
)
from mhsds_pipeline.synthetic.trust import (
    POSTCODE_DISTRICTS as POSTCODE_DISTRICTS,
)
from mhsds_pipeline.synthetic.trust import (
    POSTCODE_UNIT_LETTERS as POSTCODE_UNIT_LETTERS,
)
from mhsds_pipeline.synthetic.trust import (
    PRACTICES as PRACTICES,
)
from mhsds_pipeline.synthetic.trust import (
    SERVICE_INDEX as SERVICE_INDEX,
)
from mhsds_pipeline.synthetic.trust import (
    SERVICES as SERVICES,
)
from mhsds_pipeline.synthetic.trust import (
    TEAMS as TEAMS,
)
from mhsds_pipeline.synthetic.trust import (
    WARD_GROUPS as WARD_GROUPS,
)
from mhsds_pipeline.synthetic.trust import (
    WARDS as WARDS,
)
from mhsds_pipeline.synthetic.trust import (
    Service as Service,
)
from mhsds_pipeline.synthetic.trust import (
    Team as Team,
)
from mhsds_pipeline.synthetic.trust import (
    Ward as Ward,
)
from mhsds_pipeline.synthetic.trust import (
    build_teams as build_teams,
)
from mhsds_pipeline.synthetic.trust import (
    team_for_locality as team_for_locality,
)

#: Repository root: plugins/mhsds_pipeline/synthetic/codes.py -> parents[3].
_REPO_ROOT = Path(__file__).resolve().parents[3]
SEED_DIR = _REPO_ROOT / "dbt_project" / "seeds" / "reference"
INTERVENTION_SEED = SEED_DIR / "ref_snomed_intervention_valueset.csv"
ASSESSMENT_SEED = SEED_DIR / "ref_assessment_tools.csv"

# --- code lists (mhsds.md section 4) ---------------------------------------------------------

#: ETHNIC CATEGORY, Worcestershire/Herefordshire-like mix (mostly A). 99 is only planted as a defect.
ETHNICITY = (
    ("A", 0.836),
    ("B", 0.005),
    ("C", 0.045),
    ("D", 0.006),
    ("E", 0.002),
    ("F", 0.006),
    ("G", 0.005),
    ("H", 0.01),
    ("J", 0.015),
    ("K", 0.005),
    ("L", 0.005),
    ("M", 0.003),
    ("N", 0.003),
    ("P", 0.001),
    ("R", 0.002),
    ("S", 0.005),
    ("Z", 0.046),
)
LANGUAGES = (
    ("en", 0.94),
    ("pl", 0.022),
    ("ro", 0.01),
    ("pa", 0.005),
    ("ur", 0.005),
    ("pt", 0.005),
    ("lt", 0.004),
    ("bg", 0.004),
    ("bn", 0.003),
    ("zh", 0.002),
)
MARITAL_ADULT = (("S", 0.45), ("M", 0.3), ("D", 0.1), ("W", 0.05), ("P", 0.03), ("N", 0.07))
#: ATTENDANCE STATUS: 5/6 attended, 7 late not seen, 3 DNA, 2 patient cancelled, 4 provider cancelled.
ATTENDANCE = (("5", 0.755), ("6", 0.045), ("7", 0.01), ("3", 0.08), ("2", 0.06), ("4", 0.05))
CANCEL_REASONS_PATIENT = ("01", "02", "03")
CANCEL_REASONS_PROVIDER = ("04", "05")
#: CONSULTATION MECHANISM (MH): 01 face to face, 02 telephone, 11 video, others rare.
MECHANISM_COMMUNITY = (
    ("01", 0.64),
    ("02", 0.25),
    ("11", 0.07),
    ("04", 0.005),
    ("05", 0.01),
    ("09", 0.01),
    ("10", 0.005),
    ("12", 0.005),
    ("13", 0.003),
    ("98", 0.002),
)
MECHANISM_24_7 = (("01", 0.55), ("02", 0.4), ("11", 0.04), ("98", 0.01))
MECHANISM_LINE = (("02", 0.93), ("11", 0.05), ("09", 0.02))
#: ACTIVITY LOCATION TYPE for face-to-face contacts (A01 home, B01/B02 clinic sites, E01 GP practice).
LOCATIONS_COMMUNITY = (("A01", 0.35), ("B01", 0.45), ("B02", 0.1), ("E01", 0.1))
LOCATIONS_24_7 = (("A01", 0.5), ("B02", 0.5))
REFERRAL_CLOSURE_REASONS = (
    ("01", 0.5),
    ("02", 0.15),
    ("03", 0.1),
    ("04", 0.1),
    ("05", 0.05),
    ("06", 0.05),
    ("07", 0.03),
    ("08", 0.01),
    ("09", 0.01),
)
REFERRAL_REJECT_REASONS = (("01", 0.6), ("02", 0.3), ("03", 0.1))
# Current (v5/v6) codes only: 39, 54 and 65 were retired after September 2021 (NHS England's
# valid-code table, menh_dq 00_version_change_tables.py, LastMonth 1458); 42 = police custody,
# 56 and 55 = care homes.
ADMISSION_SOURCE = (("19", 0.85), ("51", 0.08), ("29", 0.04), ("42", 0.03))
ADMISSION_METHOD = (("21", 0.35), ("25", 0.3), ("2D", 0.15), ("24", 0.1), ("81", 0.05), ("12", 0.05))
DISCHARGE_METHOD = (("1", 0.9), ("2", 0.07), ("3", 0.03))
DISCHARGE_DESTINATION = (("19", 0.82), ("29", 0.06), ("56", 0.05), ("55", 0.04), ("51", 0.03))
DECEASED_CLOSURE_REASON = "05"


def probs(pairs: tuple[tuple[str, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """(codes, normalised probabilities) from a tuple of (code, weight)."""
    codes = np.array([c for c, _ in pairs])
    w = np.array([p for _, p in pairs], dtype=float)
    return codes, w / w.sum()


# --- seeds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssessmentTool:
    concept_id: str
    tool: str
    min_score: int
    max_score: int
    age_band: str  # CYP | ADULT | ALL
    age_min: int
    age_max: int


@lru_cache(maxsize=4)
def load_intervention_valueset(path: Path = INTERVENTION_SEED) -> tuple[dict[str, str], ...]:
    """Rows of the SNOMED CT intervention value-set seed (the only codes clean rows may use)."""
    with open(path, newline="") as fh:
        rows = tuple(dict(r) for r in csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path} holds no intervention codes")
    return rows


_AGE_RANGE_RE = re.compile(r"\b(\d{1,2})-(\d{1,2})\b")


@lru_cache(maxsize=4)
def load_assessment_tools(path: Path = ASSESSMENT_SEED) -> tuple[AssessmentTool, ...]:
    """Assessment tools and score ranges from the seed.

    The age a tool suits comes from its ``age_band`` (CYP under 18, ADULT 18+, ALL: 11+ since
    the self-report well-being scales are not used with young children) narrowed by an age range
    written in the preferred term when there is one (e.g. "SDQ self-rated 11-17").
    """
    tools = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            band = r["age_band"].strip().upper()
            lo, hi = {"CYP": (0, 17), "ADULT": (18, 120), "ALL": (11, 120)}[band]
            m = _AGE_RANGE_RE.search(r["preferred_term"])
            if m:
                lo, hi = max(lo, int(m.group(1))), min(hi, int(m.group(2)))
            tools.append(
                AssessmentTool(
                    r["concept_id"].strip(),
                    r["tool"].strip(),
                    int(r["min_score"]),
                    int(r["max_score"]),
                    band,
                    lo,
                    hi,
                )
            )
    if not tools:
        raise ValueError(f"{path} holds no assessment tools")
    return tuple(tools)


def intervention_weights(service: Service, rows: tuple[dict[str, str], ...]) -> np.ndarray:
    """Probability over the seed's codes of each being used by ``service``.

    Chosen from the seed's own terms so that a changed seed still gives sensible mixes: psychosis
    interventions mostly in EIP/inpatient, eating-disorder therapy in the eating-disorder teams,
    and the CYP eating-disorder clock-stop procedures only in the CYP eating-disorder team.
    """
    psychosis = service.code in {"EIP", "IP_ACUTE", "IP_PICU", "IP_REHAB"}
    eating = service.code in {"CAMHS_ED", "ADULT_ED"}
    w = np.zeros(len(rows))
    for i, r in enumerate(rows):
        term = r["preferred_term"].lower()
        if r["value_set"] == "cyp_ed_stop_clock":
            w[i] = 1.0 if service.code == "CAMHS_ED" else 0.0
        elif "psychosis" in term:
            w[i] = 6.0 if psychosis else 0.0
        elif "eating" in term:
            w[i] = 8.0 if eating else 0.0
        else:
            w[i] = 1.0
    if w.sum() == 0:
        w[:] = [0.0 if r["value_set"] == "cyp_ed_stop_clock" else 1.0 for r in rows]
    return w / w.sum()
