"""Synthetic EPR rows for the 47 MHSDS v6 tables generated from NHS England's rules file.

The tables (``source/schema_v6.py``, contracts in ``_mhsds_v6__models.yml``) are filled from the
activity the existing model generated, after it: Mental Health Act periods and their children,
care plans and agreements, care coordinators, CPA episodes and reviews, restrictive interventions
and their types, leave, assaults, ward and staff details, ...  Rows hang off *clean* parents only
(patients, referrals, contacts, care activities, spells, ward stays that carry no planted defect
and whose own parents carry none), so no rule of the existing tables reaches them.

Each clean row passes every catalogue rule of its table: mandatory columns filled, values in their
v6 format, codes from the column's code list (:func:`code_list`), every date in the reporting
period it is keyed in and inside its parent's dates, start <= end, whole-second times, unique keys.
MHS608AnonSelfAssess is the exception: v6 rejects every row (MHS60815), so its few rows are all
ground truth.

Planted defects (per table per month, on rows with no children, one defect per row; see
:class:`V6Generator.plant`): Blank (a mandatory column emptied), Format (too long / not digits),
National Code (a value outside the code list; only where the catalogue has a code_list rule on the
column), AV (a date after the period end, keyed in the period) and an orphan (a parent key that does
not exist). The ground truth names the NHS error code itself and the MHSDS row key text
(:func:`key_text`), not an EPR id.

Everything is drawn from ``np.random.default_rng([seed, 60, table_index, month])`` streams, so
the tables generated before these (and their keys and defects) do not move.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from mhsds_pipeline.source import schema_v6
from mhsds_pipeline.synthetic import trust
from mhsds_pipeline.synthetic.frames import ID_FORMATS, format_ids, month_index, month_start
from mhsds_pipeline.synthetic.scope import or_by_key

REPO = Path(__file__).resolve().parents[3]
SEEDS = REPO / "dbt_project" / "seeds" / "reference"
RULE_FILES = (
    REPO / "expectations" / "rules" / "mhsds_v6_rules_tables.yml",
    REPO / "expectations" / "rules" / "mhsds_v6_rules.yml",
)
#: The one placeholder code list, used for a code column until its seed (or code_list rule) lands.
PLACEHOLDER_CODES = ("01", "02", "03", "04")
#: Organisations used for ODS-pattern columns (must be live in ref_ods_organisations).
PROVIDER_ORG = "R1A"
#: ICD-10 codes (DIAGNOSIS SCHEME IN USE 02 / FINDING SCHEME IN USE 01).
ICD10 = ("F32.1", "F33.1", "F41.1", "F43.1", "F20.0", "F31.1", "F60.3", "F90.0", "F84.0")
#: Defect families and the value planted for each.
FAMILIES = ("blank", "format", "national_code", "av", "orphan")
MIN_ROWS = 8  # at least this many rows per table per month at any scale (room for the defects)
ORPHAN_BASE = 8_800_000  # integer ids no generated parent uses (existing orphans use 9,000,000+)
NAT_D = np.datetime64("NaT", "D")
DAY_D = np.timedelta64(1, "D")

# How each table is made: anchor (what a row hangs off), rows per anchor per month (or per anchor
# once for "once" tables; absolute rows per month at scale 1 for anchor "none"), share of
# period rows left open (no end date), own id prefix.
SPECS: dict[str, dict] = {
    "MHS003AccommStatus": {"anchor": "patient", "rate": 0.03},
    "MHS004EmpStatus": {"anchor": "patient", "rate": 0.03},
    "MHS005PatInd": {"anchor": "patient", "rate": 0.02, "once": True},
    "MHS006MHCareCoord": {"anchor": "patient", "rate": 0.2, "open": 0.4},
    "MHS007DisabilityType": {"anchor": "patient", "rate": 0.12, "once": True},
    "MHS008CarePlanType": {"anchor": "patient", "rate": 0.15, "id": "CP"},
    "MHS009CarePlanAgreement": {"anchor": "MHS008CarePlanType", "rate": 0.95},
    "MHS010AssTechToSupportDisTyp": {"anchor": "patient", "rate": 0.005},
    "MHS011SocPerCircumstances": {"anchor": "patient", "rate": 0.02},
    "MHS012OverseasVisitorChargCat": {"anchor": "patient", "rate": 0.003, "open": 0.5},
    "MHS014eMED3FitNote": {"anchor": "patient", "rate": 0.01},
    "MHS103OtherReasonReferral": {"anchor": "referral", "rate": 0.1, "once": True},
    "MHS104RTT": {"anchor": "referral", "rate": 0.02, "open": 0.5},
    "MHS105OnwardReferral": {"anchor": "referral", "rate": 0.02},
    "MHS106DischargePlanAgreement": {"anchor": "referral", "rate": 0.01},
    "MHS203OtherAttend": {"anchor": "contact", "rate": 0.08, "once": True},
    "MHS205PatientSDDI": {"anchor": "referral", "rate": 0.005, "open": 0.3},
    "MHS206StaffActivity": {"anchor": "activity", "rate": 0.25, "once": True},
    "MHS301GroupSession": {"anchor": "none", "rate": 80, "id": "GS"},
    "MHS302MHDropInContact": {"anchor": "none", "rate": 150, "id": "DI"},
    "MHS401MHActPeriod": {"anchor": "patient", "rate": 0.012, "open": 0.5, "id": "MHA"},
    "MHS402RespClinicianAssignPeriod": {"anchor": "MHS401MHActPeriod", "rate": 0.9},
    "MHS403ConditionalDischarge": {"anchor": "MHS401MHActPeriod", "rate": 0.1},
    "MHS404CommTreatOrder": {"anchor": "MHS401MHActPeriod", "rate": 0.2},
    "MHS405CommTreatOrderRecall": {"anchor": "MHS401MHActPeriod", "rate": 0.08},
    "MHS503AssignedCareProf": {"anchor": "spell", "rate": 0.9, "once": True},
    "MHS505RestrictiveInterventInc": {"anchor": "spell", "rate": 0.15, "id": "RI"},
    "MHS506Assault": {"anchor": "ward_stay", "rate": 0.05},
    "MHS507SelfHarm": {"anchor": "ward_stay", "rate": 0.05},
    "MHS509HomeLeave": {"anchor": "ward_stay", "rate": 0.2},
    "MHS510LeaveOfAbsence": {"anchor": "ward_stay", "rate": 0.15},
    "MHS511AbsenceWithoutLeave": {"anchor": "ward_stay", "rate": 0.03},
    "MHS512HospSpellCommAssPer": {"anchor": "spell", "rate": 0.9, "once": True},
    "MHS513SubstanceMisuse": {"anchor": "ward_stay", "rate": 0.03},
    "MHS514TrialLeave": {"anchor": "ward_stay", "rate": 0.02},
    "MHS515RestrictiveInterventType": {"anchor": "MHS505RestrictiveInterventInc", "rate": 1.3, "id": "RT"},
    "MHS516PoliceAssistanceRequest": {"anchor": "ward_stay", "rate": 0.02, "once": True},
    "MHS517SMHExceptionalPackOfCare": {"anchor": "spell", "rate": 0.05, "once": True},
    "MHS518ClinReadyforDischarge": {"anchor": "spell", "rate": 0.1, "once": True},
    "MHS601MedHistPrevDiag": {"anchor": "patient", "rate": 0.03},
    "MHS608AnonSelfAssess": {"anchor": "none", "rate": 2, "fixed": True},
    "MHS609PresComp": {"anchor": "referral", "rate": 0.02},
    "MHS701CPACareEpisode": {"anchor": "patient", "rate": 0.03, "open": 0.6, "id": "CPA"},
    "MHS702CPAReview": {"anchor": "MHS701CPACareEpisode", "rate": 0.5},
    "MHS901StaffDetails": {"anchor": "staff"},
    "MHS903WardDetails": {"anchor": "ward"},
}
#: IDB column -> existing-parent anchor id column (the value a row takes from its anchor).
ANCHOR_COLUMNS = {
    "LocalPatientID": "patient",
    "ServiceRequestID": "referral",
    "CareContactID": "contact",
    "CareActID": "activity",
    "HospProvSpellID": "spell",
    "WardStayID": "ward_stay",
}


# ------------------------------------------------------------------------------ contract, rules


@dataclass
class Column:
    name: str
    epr: str
    data_type: str
    fmt: str | None
    pattern: str | None
    mandatory: bool
    codes_seed: str | None


@dataclass
class Table:
    index: int
    model: str
    idb: str
    epr: str
    key: list[str]
    scope: dict
    parents: list[dict]
    columns: dict[str, Column]
    rules: list[dict] = field(default_factory=list)

    def rules_of(self, kind: str, column: str | None = None) -> list[dict]:
        return [
            r
            for r in self.rules
            if r["check"]["type"] == kind and (column is None or r.get("column") == column)
        ]


@cache
def _rule_docs() -> tuple[dict, ...]:
    out = []
    for path in RULE_FILES:
        if path.exists():
            out.append(yaml.safe_load(path.read_text()) or {})
    return tuple(out)


@cache
def tables() -> tuple[Table, ...]:
    """The generated tables, in contract order, with their catalogue rules."""
    out = []
    docs = _rule_docs()
    for i, m in enumerate(schema_v6.generated_contracts()):
        meta = m["config"]["meta"]
        cols = {}
        for c in m["columns"]:
            cm = (c.get("config") or {}).get("meta") or {}
            cols[c["name"]] = Column(
                c["name"], schema_v6.snake(c["name"]), c["data_type"].split("(")[0].lower(),
                cm.get("format"), cm.get("pattern"), bool(cm.get("mandatory")), cm.get("codes"),
            )  # fmt: skip
        t = Table(i, m["name"], meta["idb_table"], meta["epr_table"], list(meta["key"]), meta["scope"],
                  list(meta.get("parents") or []), cols)  # fmt: skip
        seen = set()
        for doc in docs:
            for r in doc.get("rules") or []:
                if r.get("table") == t.idb and r["id"] not in seen:
                    seen.add(r["id"])
                    t.rules.append(r)
            for col, rid in ((doc.get("format_rules") or {}).get(t.idb) or {}).items():
                if rid not in seen:
                    seen.add(rid)
                    t.rules.append({"id": rid, "table": t.idb, "column": col, "check": {"type": "format"}})
        out.append(t)
    return tuple(out)


def _seed_codes(seed: str) -> list[str] | None:
    for path in (SEEDS / f"{seed}.csv", SEEDS / "v6" / f"{seed}.csv"):
        if path.exists():
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            col = "code" if rows and "code" in rows[0] else (next(iter(rows[0])) if rows else "code")
            codes = sorted({r[col] for r in rows if r.get(col) and r.get("vodim_category") != "default"})
            return codes or None
    return None


def code_list(t: Table, column: str) -> tuple[list[str], bool]:
    """(valid codes, whether a rule checks them): the column's ``meta.codes`` seed, else the seed of
    the catalogue's code_list rule on it, else :data:`PLACEHOLDER_CODES`."""
    c = t.columns[column]
    rules = t.rules_of("code_list", column)
    for seed in (c.codes_seed, *(r["check"].get("seed") for r in rules)):
        if seed:
            codes = _seed_codes(seed)
            if codes:
                return [x for x in codes if _fits(c, x)] or codes, bool(rules)
    return [x for x in PLACEHOLDER_CODES if _fits(c, x)] or [_pad(c, "1")], bool(rules)


def parse_format(fmt: str | None) -> tuple[str, int, int]:
    """v6 format text -> (kind an|n, min length, max length); (\"\", 0, 0) when none."""
    if not fmt:
        return "", 0, 0
    m = re.fullmatch(r"(?:min (an|n)(\d+) )?max (an|n)(\d+)", fmt.strip())
    if m:
        return m.group(3), int(m.group(2) or 1), int(m.group(4))
    m = re.fullmatch(r"(an|n)(\d+)", fmt.strip())
    if m:
        return m.group(1), int(m.group(2)), int(m.group(2))
    return "", 0, 0


def _fits(c: Column, value: str) -> bool:
    kind, lo, hi = parse_format(c.fmt)
    if not kind:
        return True
    if c.data_type == "integer":
        return value.isdigit() and int(value) < 10**hi
    return lo <= len(value) <= hi and (kind == "an" or value.isdigit())


def _pad(c: Column, value: str) -> str:
    _, lo, _ = parse_format(c.fmt)
    return value.rjust(lo, "0")


# ------------------------------------------------------------------------------ values


def _sctids() -> list[str]:
    path = SEEDS / "ref_snomed_intervention_valueset.csv"
    with path.open(newline="") as fh:
        codes = sorted({r["concept_id"] for r in csv.DictReader(fh)})
    return codes[:40]


def time_text(seconds: np.ndarray | int) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def key_text(t: Table, row: dict) -> str:
    """The MHSDS row key as the rule engine writes it (key columns joined by '|', NULL -> '')."""
    parts = []
    for k in t.key:
        v = row.get(k)
        c = t.columns[k]
        if v is None:
            parts.append("")
        elif c.data_type == "date":
            parts.append(str(np.datetime64(v, "D")))
        elif c.data_type == "timestamp":
            parts.append(str(np.datetime64(v, "s")).replace("T", " "))
        else:
            parts.append(str(v))
    return "|".join(parts)


# ------------------------------------------------------------------------------ generator


@dataclass
class Defect:
    rule: str
    table: Table
    row: dict
    column: str | None
    only_month: int | None  # None: every period the row is extracted in
    upto: bool = False  # only_month means: that month and every earlier one


@dataclass
class Anchor:
    """One parent a row hangs off: ids of the existing parents it links to and its date range."""

    ids: dict[str, int]  # anchor kind -> integer id (patient, referral, ...)
    lo: np.datetime64  # first day a child date may take (day after the parent's start)
    hi: np.datetime64  # first day it may not (the parent's end day, or NaT: open)
    team: int = 0
    clinician: int = -1
    mask_src: tuple[str, int] | None = None  # for scope kind "parent": (by_table name, int id)
    open: bool = False  # the parent has no end (or ends after the window)


class V6Generator:
    """Builds the generated tables month by month from the existing model's clean activity."""

    def __init__(self, spine, model, seed: int, defects_log, enabled_defects: bool = True):
        self.spine, self.model, self.seed = spine, model, seed
        self.window = spine.window
        self.scale = model.scale
        self.defects_on = enabled_defects
        self.tables = {t.idb: t for t in tables()}
        self.rows: dict[str, list[dict]] = {t.idb: [] for t in tables()}
        self.defects: list[Defect] = []
        self.counter: dict[str, int] = {}
        self.clinicians: set[int] = set()
        self.clinician_text: set[str] = set()
        self.sctids = _sctids()
        self.orgs = self._orgs()
        self.sites = sorted({w.site_code for w in trust.WARDS})
        self.months: list[dict] = []
        self.done_once: dict[str, set] = {}
        self.log = defects_log
        self._bad(defects_log)

    # --- set-up ----------------------------------------------------------------------------------
    def _orgs(self) -> list[str]:
        codes = _seed_codes("ref_ods_organisations")
        want = [PROVIDER_ORG, trust.COMMISSIONER_HOME]
        if codes:
            ok = [c for c in want if c in codes]
            return ok or [c for c in codes if 3 <= len(c) <= 6 and c.isalnum() and c.isupper()][:5]
        return want

    def _bad(self, log) -> None:
        """Parents carrying a planted defect (or under one) are never used as anchors."""
        by = {}
        for rule, table, key, _b in log.rows:
            # unreadable cells are planted only in a SQLite EPR: ignoring them keeps the v6 rows
            # the same on SQLite and PostgreSQL (a child under such a parent is a cascade row)
            if rule != "MALFORMED_DATE":
                by.setdefault(table, set()).add(key)
        ref, adm, wm = self.spine.referrals, self.spine.admissions, self.spine.ward_movements
        pats = set(self.spine.patients["patient_id"].tolist())
        bad_pat = by.get("patients", set())
        bad_ref = by.get("referrals", set()) | set(
            ref["referral_id"][
                np.isin(ref["patient_id"], list(bad_pat)) | ~np.isin(ref["patient_id"], list(pats))
            ].tolist()
        )
        refs = set(ref["referral_id"].tolist())
        bad_adm = by.get("admissions", set()) | set(
            adm["admission_id"][
                np.isin(adm["referral_id"], list(bad_ref)) | ~np.isin(adm["referral_id"], list(refs))
            ].tolist()
        )
        adms = set(adm["admission_id"].tolist())
        bad_ws = by.get("ward_movements", set()) | set(
            wm["ward_stay_id"][
                np.isin(wm["admission_id"], list(bad_adm)) | ~np.isin(wm["admission_id"], list(adms))
            ].tolist()
        )
        # a patient's record is bad when any referral of theirs is (spine defects reach the patient)
        self.bad = {"patients": bad_pat, "referrals": bad_ref, "admissions": bad_adm, "ward_movements": bad_ws,
                    "appointments": by.get("appointments", set()), "interventions": by.get("interventions", set()),
                    "assessments": by.get("assessments", set())}  # fmt: skip

    def rng(self, t: Table, k: int, part: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, 60, t.index, k, part])

    def next_id(self, prefix: str) -> str:
        n = self.counter.get(prefix, 0) + 1
        self.counter[prefix] = n
        return f"{prefix}{n:08d}"

    # --- per month: remember the existing activity -----------------------------------------------
    def add_month(self, k: int, month, ia) -> None:
        ap, iv, asm = month.appointments, month.interventions, month.assessments
        for _rule, table, key, _b in self.log.rows:  # this month's contact and activity defects
            if table in ("appointments", "interventions"):
                self.bad[table].add(key)
        self.clinicians.update(ap["clinician_id"].tolist())
        self.clinicians.update(asm["clinician_id"][asm["clinician_id"] >= 0].tolist())
        raw = asm.get("_raw_clinician_id")
        if raw is not None:
            self.clinician_text.update(str(v) for v in raw if v is not None)
        self.clinicians.update(ia["clinician_id"].tolist())
        ok_ap = (
            ~np.isin(ap["appointment_id"], list(self.bad["appointments"]))
            & ~np.isin(ap["referral_id"], list(self.bad["referrals"]))
            & np.isin(ap["referral_id"], self.spine.referrals["referral_id"])
        )
        # one row per contact id (a planted duplicate's id appears twice)
        ids, counts = np.unique(ap["appointment_id"], return_counts=True)
        ok_ap &= np.isin(ap["appointment_id"], ids[counts == 1])
        ms = month_start(self.window.first + k)
        me = month_start(self.window.first + k + 1)
        in_month = (ap["start_at"] >= ms) & (ap["start_at"] < me) & (ap["recorded_at"] < me)
        ok_ap &= in_month
        ap_ok_ids = set(ap["appointment_id"][ok_ap].tolist())
        ok_iv = np.isin(iv["appointment_id"], list(ap_ok_ids)) & ~np.isin(
            iv["intervention_id"], list(self.bad["interventions"])
        )
        ap_pos = {a: i for i, a in enumerate(ap["appointment_id"].tolist())}
        self.months.append(
            {
                "contacts": [
                    (int(a), int(c), ap["recorded_at"][i]) for i, (a, c) in
                    enumerate(zip(ap["appointment_id"], ap["clinician_id"], strict=True)) if ok_ap[i]
                ],
                "activities": [
                    (int(v), int(ap["clinician_id"][ap_pos[int(a)]]), iv["recorded_at"][i]) for i, (v, a) in
                    enumerate(zip(iv["intervention_id"], iv["appointment_id"], strict=True)) if ok_iv[i]
                ],
            }
        )  # fmt: skip

    # --- anchors -------------------------------------------------------------------------------
    def _referral_anchors(self, k: int, to_end: bool = False) -> list[Anchor]:
        m = self.model
        mi = self.window.first + k
        rows, lo, hi = m.open_intervals(mi)
        ref = m.ref
        out = []
        bad = self.bad["referrals"]
        for r, a, b in zip(rows.tolist(), lo, hi, strict=True):
            rid = int(ref["referral_id"][r])
            if rid in bad or int(ref["patient_id"][r]) in self.bad["patients"]:
                continue
            if to_end and m.end[r] < self.window.now:
                continue
            # child dates: from the day after the referral was received, before the day it ended
            start_day = ref["received_at"][r].astype("datetime64[D]") + DAY_D
            lo_d = max(a.astype("datetime64[D]"), start_day)
            hi_d = b.astype("datetime64[D]") if b < self.window.now else np.datetime64(b, "D")
            ended = not np.isnat(ref["discharged_at"][r]) and ref["discharged_at"][r] < month_start(mi + 1)
            if ended:
                hi_d = ref["discharged_at"][r].astype("datetime64[D]")
            if lo_d >= hi_d:
                continue
            team = int(ref["team_id"][r])
            out.append(Anchor({"patient": int(ref["patient_id"][r]), "referral": rid}, lo_d, hi_d, team,
                              team * 100 + 1 + rid % 30, ("referrals", rid)))  # fmt: skip
        return out

    def _patient_anchors(self, k: int, to_end: bool = False) -> list[Anchor]:
        seen, out = set(), []
        for a in self._referral_anchors(k, to_end):
            p = a.ids["patient"]
            if p not in seen:
                seen.add(p)
                out.append(Anchor({"patient": p}, a.lo, a.hi, a.team, a.clinician, ("patients", p)))
        return out

    def _spell_anchors(self, k: int, stays: bool) -> list[Anchor]:
        adm, wm, ref = self.spine.admissions, self.spine.ward_movements, self.spine.referrals
        ms, me = month_start(self.window.first + k), month_start(self.window.first + k + 1)
        ms_d, me_d = ms.astype("datetime64[D]"), me.astype("datetime64[D]")
        team_of = dict(zip(ref["referral_id"].tolist(), ref["team_id"].tolist(), strict=True))
        adm_pos = {a: i for i, a in enumerate(adm["admission_id"].tolist())}
        out = []
        if not stays:
            src = zip(adm["admission_id"].tolist(), adm["admitted_at"], adm["discharged_at"], strict=True)
            bad = self.bad["admissions"]
        else:
            src = zip(wm["ward_stay_id"].tolist(), wm["start_at"], wm["end_at"], strict=True)
            bad = self.bad["ward_movements"]
        for i, (key, start, end) in enumerate(src):
            if key in bad or np.isnat(start) or start >= me or (not np.isnat(end) and end < ms):
                continue
            if not np.isnat(end) and end < start:
                continue
            lo_d = max(start.astype("datetime64[D]") + DAY_D, ms_d)
            hi_d = me_d if np.isnat(end) or end >= self.window.now else min(end.astype("datetime64[D]"), me_d)
            if stays:
                a = int(wm["admission_id"][i])
                # the ward stay's spell must be clean and contain it
                if a in self.bad["admissions"]:
                    continue
                sp = adm_pos[a]
                dis = adm["discharged_at"][sp]
                if not np.isnat(dis):
                    hi_d = min(hi_d, dis.astype("datetime64[D]"))
                ids = {"ward_stay": int(key), "spell": a}
                rid = int(adm["referral_id"][sp])
            else:
                ids = {"spell": int(key)}
                rid = int(adm["referral_id"][i])
            if lo_d >= hi_d:
                continue
            team = int(team_of.get(rid, 0))
            src_name = "ward_movements" if stays else "admissions"
            is_open = bool(np.isnat(end) or end >= self.window.now)
            if stays and not np.isnat(adm["discharged_at"][sp]):
                is_open = False
            out.append(
                Anchor(ids, lo_d, hi_d, team, team * 100 + 1 + int(key) % 30, (src_name, int(key)), is_open)
            )
        return out

    def anchors(self, kind: str, k: int, to_end: bool = False) -> list[Anchor]:
        if kind == "patient":
            return self._patient_anchors(k, to_end)
        if kind == "referral":
            return self._referral_anchors(k, to_end)
        if kind in ("spell", "ward_stay"):
            anchors = self._spell_anchors(k, kind == "ward_stay")
            if to_end:
                anchors = [a for a in anchors if a.open]
            return anchors
        if kind in ("contact", "activity"):
            ms = month_start(self.window.first + k).astype("datetime64[D]")
            key = "contacts" if kind == "contact" else "activities"
            srcs = "appointments" if kind == "contact" else "interventions"
            return [Anchor({kind: i}, ms, ms + 28 * DAY_D, i // 1000 % 40, c, (srcs, i)) for i, c, _r in
                    self.months[k][key]]  # fmt: skip
        raise ValueError(kind)

    # --- building rows ---------------------------------------------------------------------------
    def generate(self) -> None:
        order = [t for t in tables() if SPECS[t.idb]["anchor"] not in ("staff", "ward")]
        # generated parents before their children (the contract's order already is)
        for k in range(self.window.months):
            for t in order:
                self._month(t, k)
        for t in tables():
            if SPECS[t.idb]["anchor"] == "ward":
                self._wards(t)
        for t in tables():
            if SPECS[t.idb]["anchor"] == "staff":
                self._staff(t)
        if self.defects_on:
            for k in range(self.window.months):
                for t in tables():
                    self.plant(t, k)

    def _month(self, t: Table, k: int) -> None:
        spec = SPECS[t.idb]
        rng = self.rng(t, k)
        mi = self.window.first + k
        ms_d = month_start(mi).astype("datetime64[D]")
        me_d = month_start(mi + 1).astype("datetime64[D]")
        kind = spec["anchor"]
        scope = t.scope
        opens = spec.get("open", 0.0) if scope["kind"] == "period" else 0.0
        if kind == "none":
            n = (
                int(spec["rate"])
                if spec.get("fixed")
                else max(MIN_ROWS, int(rng.poisson(spec["rate"] * self.scale)))
            )
            anchors = [Anchor({}, ms_d, me_d, int(rng.integers(0, len(trust.TEAMS))), -1) for _ in range(n)]
            chosen = anchors
        elif kind.startswith("MHS"):
            parents = [r for r in self.rows[kind] if r["_month"] == k]
            chosen = []
            for p in parents:
                n = int(rng.poisson(spec["rate"])) if spec["rate"] != 1.0 else 1
                if kind == "MHS505RestrictiveInterventInc":
                    n = max(1, n)  # has_child: every incident has a type
                if kind == "MHS008CarePlanType":
                    n = 1 if rng.random() < spec["rate"] else 0
                for _ in range(min(n, 3)):
                    chosen.append(p)
        else:
            once = spec.get("once", False)
            pool = self.anchors(kind, k)
            if once:
                done = self.done_once.setdefault(t.idb, set())
                pool = [a for a in pool if a.mask_src not in done]
            p = spec["rate"]
            take = rng.random(len(pool)) < p
            chosen = [a for a, x in zip(pool, take, strict=True) if x]
            if len(chosen) < MIN_ROWS and len(pool):
                extra = rng.permutation(len(pool))[:MIN_ROWS]
                have = {id(a) for a in chosen}
                chosen += [pool[i] for i in extra if id(pool[i]) not in have][: MIN_ROWS - len(chosen)]
            if once:
                done.update(a.mask_src for a in chosen)
            if opens:
                ends = {a.mask_src for a in self.anchors(kind, k, to_end=True)}
        for a in chosen:
            if kind.startswith("MHS"):
                row = self._child_row(t, a, rng, k, ms_d, me_d)
            else:
                is_open = bool(opens) and a.mask_src in ends and rng.random() < opens
                row = self._row(t, a, rng, k, ms_d, me_d, is_open)
            if row is not None:
                self.rows[t.idb].append(row)
        self._dedupe(t, k)

    def _dates(self, rng, lo, hi, ms_d, me_d) -> tuple[np.datetime64, np.datetime64] | None:
        lo = max(lo, ms_d)
        hi = me_d if np.isnat(hi) else min(hi, me_d)
        if lo >= hi:
            return None
        n = int((hi - lo) / DAY_D)
        d = lo + int(rng.integers(0, n)) * DAY_D
        e = d + int(rng.integers(0, max(1, int((hi - d) / DAY_D)))) * DAY_D
        return d, e

    def _row(self, t, a: Anchor, rng, k, ms_d, me_d, is_open) -> dict | None:
        span = self._dates(rng, a.lo, a.hi, ms_d, me_d)
        if span is None:
            return None
        d, e = span
        row = self._fill(t, rng, a, d, e, is_open, k)
        row["_anchor"] = a
        return row

    def _child_row(self, t, parent: dict, rng, k, ms_d, me_d) -> dict | None:
        pt = self.tables[parent["_table"]]
        ps, pe = parent["_start"], parent["_end"]
        lo = ps if ps is not None else ms_d
        hi = NAT_D if pe is None else pe + DAY_D
        if t.idb == "MHS515RestrictiveInterventType":
            hi = pe + DAY_D if pe is not None else ps + DAY_D
        a = Anchor(dict(parent["_anchor"].ids), lo, hi, parent["_anchor"].team, parent["_anchor"].clinician,
                   parent["_anchor"].mask_src)  # fmt: skip
        if ps is not None and ps < ms_d:  # a parent dated before the window (parent-scoped)
            span = (ps, ps)
        else:
            span = self._dates(rng, lo, hi, ms_d, me_d)
        if span is None:
            return None
        d, e = span
        if t.idb == "MHS515RestrictiveInterventType":
            d, e = ps, pe if pe is not None else ps
        is_open = pe is None and t.scope["kind"] == "period"
        row = self._fill(t, rng, a, d, e, is_open, k, early=ps if ps is not None and ps < ms_d else None)
        row["_anchor"] = a
        row["_parent"] = parent
        parent["_children"] = parent.get("_children", 0) + 1
        # the generated parent's own key columns
        for pcol in pt.key:
            if pcol in t.columns and pcol not in ("LocalPatientID",):
                row[pcol] = parent[pcol]
        if t.idb == "MHS515RestrictiveInterventType":
            row["RestrictiveIntIncID"] = parent["RestrictiveIntIncID"]
            row["RestrictiveIntTypeID"] = self.next_id("RT")
            for c in t.columns.values():  # times equal to the incident's
                if c.data_type == "time":
                    row[c.name] = parent.get("StartTimeRestrictiveIntInc")
        return row

    def _fill(self, t: Table, rng, a: Anchor, d, e, is_open: bool, k: int, early=None) -> dict:
        """A clean row: every date ``d`` (or ``e`` for the scope's end), times equal."""
        row: dict = {"_table": t.idb, "_month": k, "_rid": self.next_id(t.idb[:6] + "-")}
        scope = t.scope
        end_col = scope.get("end") if scope["kind"] == "period" else None
        tsec = int(rng.integers(8 * 3600, 17 * 3600))
        nulls = {
            x for r in t.rules_of("fail_when") for x in t.columns if re.search(rf"\b{x}\b", r["check"]["sql"])
        }
        diag = {r["column"]: r["check"] for r in t.rules_of("diagnosis_code")}
        schemes = {v["scheme_column"]: v.get("icd10_code", "02") for v in diag.values()}
        sct = {r["column"] for r in t.rules_of("sctid")}
        spec = SPECS[t.idb]
        if t.idb == "MHS608AnonSelfAssess":
            from mhsds_pipeline.synthetic.codes import load_assessment_tools

            tool = load_assessment_tools()[int(rng.integers(0, 3))]
            for c in t.columns.values():
                row[c.name] = None
            row.update(AssToolCompTimestamp=np.datetime64(d, "s") + np.timedelta64(tsec, "s"),
                       CodedAssToolType=tool.concept_id, PersScore=str(tool.min_score),
                       ActLocTypeCode=None, OrgIDComm=None)  # fmt: skip
            row["_start"], row["_end"] = d, d
            row["_rec"] = np.datetime64(d, "s") + np.timedelta64(tsec + 3600, "s")
            return row
        for c in t.columns.values():
            n = c.name
            kind, lo, hi = parse_format(c.fmt)
            v = None
            if n in nulls and not c.mandatory:
                v = None
            elif n in ANCHOR_COLUMNS and ANCHOR_COLUMNS[n] in a.ids:
                kind_id = ANCHOR_COLUMNS[n]
                col = {"patient": "patient_id", "referral": "referral_id", "contact": "appointment_id",
                       "activity": "intervention_id", "spell": "admission_id", "ward_stay": "ward_stay_id"}[kind_id]  # fmt: skip
                v = str(format_ids(col, np.array([a.ids[kind_id]]))[0])
            elif n in ANCHOR_COLUMNS:
                v = None  # e.g. LocalPatientID of a drop-in contact
            elif n in t.key and n.endswith("ID") and c.data_type == "varchar" and spec.get("id"):
                v = self.next_id(spec["id"])
            elif n == "CareProfLocalID":
                clin = a.clinician if a.clinician >= 0 else int(a.team) * 100 + int(rng.integers(1, 31))
                self.clinicians.add(clin)
                v = str(format_ids("clinician_id", np.array([clin]))[0])
            elif c.data_type == "date":
                if n == end_col:
                    v = None if is_open else e
                elif "BirthDate" in n:
                    v = d - int(rng.integers(18 * 365, 70 * 365)) * DAY_D
                else:
                    v = d
            elif c.data_type == "timestamp":
                v = np.datetime64(d, "s") + np.timedelta64(tsec, "s")
            elif c.data_type == "time":
                v = None if (end_col and is_open and "End" in n) else time_text(tsec)
            elif n in schemes:
                v = schemes[n]
            elif n in diag:
                v = ICD10[int(rng.integers(0, len(ICD10)))]
            elif n in sct or (kind == "n" and lo == 6 and hi == 18) or (lo == 6 and hi == 512):
                v = self.sctids[int(rng.integers(0, len(self.sctids)))]
            elif c.pattern == "ods":
                v = self.orgs[int(rng.integers(0, len(self.orgs)))]
            elif lo == 5 and hi == 9:
                v = self.sites[int(rng.integers(0, len(self.sites)))]
            elif n == "NHSNumber":  # a drop-in contact: a valid number from the 999 test range
                v = _test_nhs_number(rng)
            elif c.data_type == "integer" and not c.codes_seed:
                v = int(rng.integers(1, 60)) if n != "SMHEPCCharge" else int(rng.integers(1000, 9000))
            else:
                codes, _ = code_list(t, n)
                v = codes[int(rng.integers(0, len(codes)))]
                if c.data_type == "integer":
                    v = int(v) if str(v).isdigit() else 1
            row[n] = v
        row["_start"] = d
        row["_end"] = None if is_open else (e if end_col else d)
        row["_rec"] = np.datetime64(d, "s") + np.timedelta64(tsec + 3600, "s")
        if scope["kind"] == "parent":
            # extracted in every period its parent is: its dates (and keying) precede the window
            back = int(rng.integers(2, 300)) * DAY_D
            if early is None:
                early = self.window.start.astype("datetime64[D]") - back
            # never before the parent started (MHS516/517 dates are checked against it); a parent
            # that started in the window keys its child in its own first month
            inpatient = ("spell" in a.ids or "ward_stay" in a.ids) and "contact" not in a.ids
            floor = np.datetime64(a.lo, "D") - DAY_D if inpatient and not np.isnat(a.lo) else None
            if floor is not None and early < floor:
                early = floor
            for c in t.columns.values():
                if row.get(c.name) is not None and c.data_type == "date" and "BirthDate" not in c.name:
                    row[c.name] = early
                elif row.get(c.name) is not None and c.data_type == "timestamp":
                    row[c.name] = np.datetime64(early, "s") + np.timedelta64(tsec, "s")
            row["_start"], row["_end"] = early, early
            row["_rec"] = np.datetime64(early, "s") + np.timedelta64(tsec + 3600, "s")
        return row

    def _dedupe(self, t: Table, k: int) -> None:
        """Unique keys (and unique ``unique`` rule columns) among the rows keyed this month and
        the open rows of earlier months."""
        rows = self.rows[t.idb]
        checks = [t.key] + [r["check"]["columns"] for r in t.rules_of("unique")]
        seen = [set() for _ in checks]
        keep = []
        for r in rows:
            live = r["_month"] == k or (r["_end"] is None and r["_month"] < k)
            if not live:
                keep.append(r)
                continue
            sigs = [tuple(str(r.get(c)) for c in cols) for cols in checks]
            if r["_month"] == k and any(s in seen[i] for i, s in enumerate(sigs)):
                continue
            for i, s in enumerate(sigs):
                seen[i].add(s)
            keep.append(r)
        self.rows[t.idb] = keep

    def _wards(self, t: Table) -> None:
        rng = self.rng(t, 0)
        for wi, w in enumerate(trust.WARDS):
            row = {"_table": t.idb, "_month": -1, "_rid": self.next_id("MHS903-"), "_start": None, "_end": None,
                   "_rec": self.window.start - np.timedelta64(86400, "s"), "_ward": wi}  # fmt: skip
            for c in t.columns.values():
                kind, lo, hi = parse_format(c.fmt)
                if c.name == "WardCode":
                    v = w.ward_code
                elif c.name == "SiteIDOfWard":
                    v = w.site_code
                elif c.data_type == "integer":
                    v = int(w.beds * 30)
                else:
                    codes, _ = code_list(t, c.name)
                    v = codes[int(rng.integers(0, len(codes)))]
                row[c.name] = v
            self.rows[t.idb].append(row)

    def _staff(self, t: Table) -> None:
        rng = self.rng(t, 0)
        ids = sorted(
            str(x) for x in format_ids("clinician_id", np.array(sorted(self.clinicians), dtype=np.int64))
        )
        ids += sorted(self.clinician_text - set(ids))
        # staff with no activity this year (the ones planted defects go on)
        spare = [str(format_ids("clinician_id", np.array([99_000 + i]))[0]) for i in range(12)]
        for cid in ids + spare:
            row = {"_table": t.idb, "_month": -1, "_rid": self.next_id("MHS901-"), "_start": None, "_end": None,
                   "_rec": self.window.start - np.timedelta64(86400, "s"), "_spare": cid in spare}  # fmt: skip
            for c in t.columns.values():
                kind, lo, hi = parse_format(c.fmt)
                if c.name == "CareProfLocalID":
                    v = cid
                elif c.pattern == "ods":
                    v = PROVIDER_ORG if PROVIDER_ORG in self.orgs else self.orgs[0]
                elif c.name == "ProfRegEntryID":
                    v = f"{int(rng.integers(1_000_000, 9_999_999))}"
                else:
                    codes, _ = code_list(t, c.name)
                    v = codes[int(rng.integers(0, len(codes)))]
                row[c.name] = v
            self.rows[t.idb].append(row)

    # --- defects ---------------------------------------------------------------------------------
    def _linked(self, t: Table, codes_too: bool = True) -> set[str]:
        """Columns a blank or a bad value must not touch: parent/child links, fail_when inputs,
        a single-column key."""
        out = set(ANCHOR_COLUMNS) | {"CareProfLocalID", "WardCode"}
        if len(t.key) == 1:
            out.add(t.key[0])
        for other in self.tables.values():
            for r in other.rules:
                ch = r["check"]
                if ch["type"] in ("references", "has_child") and t.idb in (
                    r["table"],
                    ch.get("parent"),
                    ch.get("child"),
                ):
                    out.update(ch["columns"])
                    out.update(ch["columns"].values())
        for r in t.rules_of("fail_when"):
            out.update(c for c in t.columns if re.search(rf"\b{c}\b", r["check"]["sql"]))
        for r in t.rules:
            ch = r["check"]
            if ch["type"] in ("sctid", "diagnosis_code", "value_set", "score_range", "org_live") or (
                codes_too and ch["type"] == "code_list"
            ):
                out.add(r["column"])
            if ch.get("scheme_column"):
                out.add(ch["scheme_column"])
        return out

    def _other_rules(self, t: Table, column: str) -> int:
        n = 0
        for r in t.rules:
            ch = r["check"]
            if r.get("column") == column and ch["type"] not in ("format", "not_null"):
                n += 1
            elif column in (ch.get("before"), ch.get("after"), ch.get("before_time"), ch.get("after_time")):
                n += 1
            elif column in (ch.get("columns") or []):
                n += 1
        return n

    def _candidates(self, t: Table, k: int, used: set) -> list[dict]:
        out = []
        for r in self.rows[t.idb]:
            # an incident always has a type row (has_child): its defects cascade to them
            if id(r) in used or (r.get("_children") and t.idb != "MHS505RestrictiveInterventInc"):
                continue
            if t.idb == "MHS901StaffDetails":
                if r.get("_spare"):
                    out.append(r)
            elif t.idb == "MHS903WardDetails":
                continue  # every ward's details are needed by its ward stays
            elif r["_month"] == k:
                out.append(r)
        return out

    def plant(self, t: Table, k: int) -> None:
        rng = self.rng(t, k, 1)
        if t.idb == "MHS608AnonSelfAssess":
            always = t.rules_of("always")
            if always:
                for r in self.rows[t.idb]:
                    if r["_month"] == k:
                        self.defects.append(Defect(always[0]["id"], t, r, None, None))
            return
        if t.idb == "MHS903WardDetails" or (t.idb == "MHS901StaffDetails" and k > 0):
            return  # ward details are all needed; staff rows are in every period: planted once
        used: set = set()
        linked = self._linked(t)
        blanks = sorted(
            ((self._other_rules(t, r["column"]), r["id"], r["column"]) for r in t.rules_of("not_null")
             if r["column"] in t.columns and r["column"] not in self._linked(t, codes_too=False)),
        )  # fmt: skip
        fmt_rules = {r["column"]: r["id"] for r in t.rules_of("format")}
        formats = sorted(
            (self._other_rules(t, c.name), fmt_rules[c.name], c.name) for c in t.columns.values()
            if c.name in fmt_rules and c.data_type in ("varchar", "integer") and parse_format(c.fmt)[0]
            and c.name not in linked and c.pattern != "ods" and parse_format(c.fmt)[1:] != (5, 9)
        )  # fmt: skip
        codes = [(r["id"], r["column"]) for r in t.rules_of("code_list") if r["column"] in t.columns]
        for family in FAMILIES:
            cands = self._candidates(t, k, used)
            order = rng.permutation(len(cands))
            for i in order[:60]:
                row = cands[int(i)]
                if self._plant_one(t, family, row, k, rng, blanks, formats, codes):
                    used.add(id(row))
                    break

    def _keys_elsewhere(self, t: Table, row: dict) -> set[str]:
        return {key_text(t, o) for o in self.rows[t.idb] if o is not row}

    def _plant_one(self, t, family, row, k, rng, blanks, formats, codes) -> bool:
        if family == "blank" and blanks:
            _, rid, col = blanks[0]
            if col in t.key and key_text(t, {**row, col: None}) in self._keys_elsewhere(t, row):
                return False
            row[col] = None
            self.defects.append(Defect(rid, t, row, col, None))
            return True
        if family == "format" and formats:
            _, rid, col = formats[0]
            c = t.columns[col]
            kind, lo, hi = parse_format(c.fmt)
            if c.data_type == "integer":
                row[col] = 10**hi + int(rng.integers(0, 9))
            elif kind == "n":
                row[col] = "X" * max(lo, 1)
            else:
                row[col] = "Q" * (hi + 1 + int(rng.integers(0, 4)))
            self.defects.append(Defect(rid, t, row, col, None))
            return True
        if family == "national_code" and codes:
            rid, col = codes[0]
            valid, _ = code_list(t, col)
            c = t.columns[col]
            bad = next(
                (
                    x
                    for x in ("ZZ", "Z9", "ZZZ", "99999", "Q1", "8", "77", "ZZZZZZ")
                    if x not in valid and _fits(c, x)
                ),
                None,
            )
            if bad is None:
                return False
            row[col] = int(bad) if c.data_type == "integer" else bad
            self.defects.append(Defect(rid, t, row, col, None))
            return True
        if family == "av":
            return self._plant_av(t, row, k, rng)
        if family == "orphan":
            return self._plant_orphan(t, row, k)
        return False

    def _plant_av(self, t: Table, row: dict, k: int, rng) -> bool:
        scope = t.scope
        # The date is put after the end of the whole window: a row of a period or event table is
        # then extracted only in the month it was keyed (its interval overlaps no other month),
        # and a parent-scoped row fails the same rule in every month it is extracted in.
        cleared: dict = {}
        if scope["kind"] == "period":
            col = scope["start"]
            end = t.columns[scope["end"]]
            if row.get(end.name) is not None:
                if end.mandatory:
                    return False
                cleared[end.name] = row[end.name]
                row[end.name] = None  # an open interval starting after the window
                tcol = _time_twin_of(t, end.name)
                if tcol and row.get(tcol) is not None:
                    cleared[tcol] = row[tcol]
                    row[tcol] = None
        elif scope["kind"] == "event":
            col = scope["date"]
        elif scope["kind"] == "parent":
            col = next((c.name for c in t.columns.values() if c.data_type in ("date", "timestamp")
                        and row.get(c.name) is not None and any(r["check"].get("bound", "both") in ("end", "both")
                        for r in t.rules_of("date_in_period", c.name))), None)  # fmt: skip
            if col is None:
                return False
        else:
            return False
        ok = self._av_possible(t, row, col)
        if not ok:
            row.update(cleared)
            return False
        rules = ok
        we_d = month_start(self.window.first + self.window.months).astype("datetime64[D]")
        new = we_d + int(rng.integers(1, 6)) * DAY_D
        if t.columns[col].data_type == "timestamp":
            new = np.datetime64(new, "s") + np.timedelta64(36000, "s")
        if key_text(t, {**row, col: new}) in self._keys_elsewhere(t, row):
            row.update(cleared)
            return False
        row[col] = new
        if scope["kind"] == "parent":  # keyed now: extracted this month even when its parent is not
            row["_rec"] = np.datetime64(month_start(self.window.first + k), "s") + np.timedelta64(36000, "s")
        # after the window, the date fails the rule in every month the row is extracted in
        self.defects.append(Defect(rules[0]["id"], t, row, col, None))
        return True

    def _av_possible(self, t: Table, row: dict, col: str) -> list | None:
        """The 'after the period end' rules of ``col`` when moving it past the window trips no
        other rule of the row, else None."""
        if row.get(col) is None or t.columns[col].data_type not in ("date", "timestamp"):
            return None
        if row.get("_children"):  # its children's dates are checked against it (MHS505 -> MHS515)
            return None
        rules = [
            r for r in t.rules_of("date_in_period", col) if r["check"].get("bound", "both") in ("end", "both")
        ]
        if not rules:
            return None
        for r in t.rules_of("date_order"):
            if r["check"]["before"] == col and row.get(r["check"]["after"]) is not None:
                return None
        if t.scope["kind"] == "parent":  # extracted in other months too: its other dates stay valid
            for c in t.columns.values():
                if c.name != col and row.get(c.name) is not None and c.data_type in ("date", "timestamp"):
                    if any(
                        r["check"].get("bound", "both") in ("start", "both")
                        for r in t.rules_of("date_in_period", c.name)
                    ):
                        return None
        if t.rules_of("parent_date_order", col):
            a = row.get("_anchor")
            if row.get("_parent") is not None or a is None or not a.open:
                return None
        return rules

    def _plant_orphan(self, t: Table, row: dict, k: int) -> bool:
        refs = t.rules_of("references")
        if not refs:
            return False
        parent = row.get("_parent")
        if (
            parent is not None
            and parent.get("_children", 0) < 2
            and any(
                r["check"].get("child") == t.idb for r in self.tables[parent["_table"]].rules_of("has_child")
            )
        ):
            return False
        r = refs[0]
        cols = list(r["check"]["columns"])
        for c in cols:
            if c in ANCHOR_COLUMNS:
                col = {"patient": "patient_id", "referral": "referral_id", "contact": "appointment_id",
                       "activity": "intervention_id", "spell": "admission_id", "ward_stay": "ward_stay_id"}[ANCHOR_COLUMNS[c]]  # fmt: skip
                n = self.counter.get("orphan", 0) + 1
                self.counter["orphan"] = n
                row[c] = str(format_ids(col, np.array([ORPHAN_BASE + n]))[0])
            elif c == "WardCode":
                row[c] = "WRDX9"
            else:
                row[c] = self.next_id("ORPH")
        if parent is not None:
            parent["_children"] -= 1
            row["_orphan_of"] = row.pop("_parent")
        row["_orphan"] = True
        if t.scope["kind"] == "parent":  # keyed this month, so extracted with it (and only it)
            row["_rec"] = np.datetime64(month_start(self.window.first + k), "s") + np.timedelta64(36000, "s")
        self.defects.append(Defect(r["id"], t, row, cols[0], None))
        return True

    # --- outputs ---------------------------------------------------------------------------------
    def frames(self) -> Iterable[tuple[str, dict]]:
        """(EPR table, frame) for the loader."""
        for t in tables():
            rows = self.rows[t.idb]
            if not rows:
                continue
            frame: dict[str, np.ndarray] = {"record_id": np.array([r["_rid"] for r in rows], dtype=object)}
            for c in t.columns.values():
                vals = [r.get(c.name) for r in rows]
                if c.data_type == "date":
                    arr = np.array([NAT_D if v is None else v for v in vals], dtype="datetime64[D]")
                elif c.data_type == "timestamp":
                    arr = np.array([np.datetime64("NaT", "s") if v is None else v for v in vals],
                                   dtype="datetime64[s]")  # fmt: skip
                elif c.data_type == "integer":
                    arr = np.array([-1 if v is None else int(v) for v in vals], dtype=np.int64)
                else:
                    arr = np.array(["" if v is None else str(v) for v in vals], dtype=object)
                frame[c.epr] = arr
            frame["recorded_at"] = np.array([r["_rec"] for r in rows], dtype="datetime64[s]")
            yield t.epr, frame

    def masks(self, window, by_table: dict, wm_codes: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
        """Model name -> per-row uint64 period masks (the extract scope, computed here)."""
        from mhsds_pipeline.synthetic.scope import lookup

        starts = [month_start(window.first + i) for i in range(window.months)]
        ends = [month_start(window.first + i + 1) for i in range(window.months)]
        all_bits = np.uint64((1 << window.months) - 1) if window.months < 64 else np.uint64(2**64 - 1)
        out = {}
        ward_keys = wm_codes
        ppos = {t.idb: {id(r): i for i, r in enumerate(self.rows[t.idb])} for t in tables()}
        for t in tables():
            rows = self.rows[t.idb]
            n = len(rows)
            m = np.zeros(n, dtype=np.uint64)
            rec = np.array([r["_rec"] for r in rows], dtype="datetime64[s]")
            rk = month_index(rec) - window.first
            ok = (rk >= 0) & (rk < window.months)
            m |= np.where(ok, np.uint64(1) << np.where(ok, rk, 0).astype(np.uint64), np.uint64(0)).astype(
                np.uint64
            )
            sc = t.scope
            if sc["kind"] == "all":
                m |= all_bits
            elif sc["kind"] == "event":
                col = sc["date"]
                d = np.array([np.datetime64("NaT", "s") if r.get(col) is None else np.datetime64(r[col], "s")
                              for r in rows], dtype="datetime64[s]")  # fmt: skip
                dk = month_index(d) - window.first
                ok = (dk >= 0) & (dk < window.months)
                m |= np.where(ok, np.uint64(1) << np.where(ok, dk, 0).astype(np.uint64), np.uint64(0)).astype(
                    np.uint64
                )
            elif sc["kind"] == "period":
                b = np.array([np.datetime64("NaT", "s") if r.get(sc["start"]) is None else np.datetime64(r[sc["start"]], "s")
                              for r in rows], dtype="datetime64[s]")  # fmt: skip
                e = np.array([np.datetime64("NaT", "s") if r.get(sc["end"]) is None else np.datetime64(r[sc["end"]], "s")
                              for r in rows], dtype="datetime64[s]")  # fmt: skip
                for i, (s, en) in enumerate(zip(starts, ends, strict=True)):
                    hit = (b < en) & (np.isnat(e) | (e >= s))
                    m |= hit.astype(np.uint64) << np.uint64(i)
            elif sc["kind"] == "parent":
                if t.idb == "MHS903WardDetails":
                    codes = np.array([r["_ward"] for r in rows], dtype=np.int64)
                    m |= lookup(*ward_keys, codes)
                else:
                    for i, r in enumerate(rows):
                        a = r.get("_anchor")
                        par = r.get("_parent")
                        if par is not None:  # a generated parent: extracted with it
                            m[i] |= out[self.tables[par["_table"]].model][ppos[par["_table"]][id(par)]]
                            continue
                        if a is not None and a.mask_src is not None and not r.get("_orphan"):
                            name, key = a.mask_src
                            m[i] |= lookup(*by_table[name], np.array([key], dtype=np.int64))[0]
            out[t.model] = m
        return out

    def ground_truth(
        self, masks: dict[str, np.ndarray], window
    ) -> list[tuple[str, str, str, str, str, list[str]]]:
        """(rule, epr_table, MHSDS key, model, column, periods) per planted defect."""
        pos = {t.idb: {id(r): i for i, r in enumerate(self.rows[t.idb])} for t in tables()}
        out = []
        for d in self.defects:
            m = int(masks[d.table.model][pos[d.table.idb][id(d.row)]])
            if d.only_month is not None:
                m &= ((1 << (d.only_month + 1)) - 1) if d.upto else 1 << d.only_month
            periods = [window.period(i) for i in range(window.months) if m >> i & 1]
            if periods:
                out.append(
                    (d.rule, d.table.epr, key_text(d.table, d.row), d.table.model, d.column or "", periods)
                )
        return out

    def record_ids(self, model: str) -> np.ndarray:
        t = next(x for x in tables() if x.model == model)
        return np.array([r["_rid"] for r in self.rows[t.idb]], dtype=object).astype(str)


def ward_code_masks(wm: dict, by_ward_stay: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(ward index, OR of the period masks of the ward stays on it)."""
    from mhsds_pipeline.synthetic.scope import lookup

    masks = lookup(*by_ward_stay, wm["ward_stay_id"].astype(np.int64))
    return or_by_key(wm["ward_code"].astype(np.int64), masks)


__all__ = ["ID_FORMATS", "V6Generator", "code_list", "key_text", "tables", "ward_code_masks"]


def _test_nhs_number(rng: np.random.Generator) -> str:
    """A valid NHS number (Modulus 11) from the 999 test range."""
    from mhsds_pipeline.identifiers import nhs_number_check_digit

    while True:
        body = "999" + "".join(str(int(x)) for x in rng.integers(0, 10, 6))
        check = nhs_number_check_digit(body)
        if check is not None:
            return body + str(check)


def _time_twin_of(t: Table, date_col: str) -> str | None:
    """The time item paired with a date item (EndDateX -> EndTimeX), if the table has one."""
    cand = date_col.replace("Date", "Time", 1)
    return cand if cand != date_col and cand in t.columns else None
