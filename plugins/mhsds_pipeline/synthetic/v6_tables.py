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

import re

import numpy as np

from mhsds_pipeline.synthetic import trust, v6_spec
from mhsds_pipeline.synthetic.frames import ID_FORMATS, format_ids, month_start
from mhsds_pipeline.synthetic.v6_defects import V6Defects
from mhsds_pipeline.synthetic.v6_outputs import V6Outputs
from mhsds_pipeline.synthetic.v6_spec import (
    ANCHOR_COLUMNS,
    DAY_D,
    ICD10,
    MIN_ROWS,
    NAT_D,
    SPECS,
    Anchor,
    Defect,
    Table,
    _sctids,
    _seed_codes,
    _test_nhs_number,
    code_list,
    key_text,
    parse_format,
    tables,
    time_text,
    ward_code_masks,
)


class V6Generator(V6Defects, V6Outputs):
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
        want = [v6_spec.PROVIDER_ORG, trust.COMMISSIONER_HOME]
        if codes:
            ok = [c for c in want if c in codes or c in v6_spec.EXTRA_ORGS]
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
                    v = v6_spec.PROVIDER_ORG if v6_spec.PROVIDER_ORG in self.orgs else self.orgs[0]
                elif c.name == "ProfRegEntryID":
                    v = f"{int(rng.integers(1_000_000, 9_999_999))}"
                else:
                    codes, _ = code_list(t, c.name)
                    v = codes[int(rng.integers(0, len(codes)))]
                row[c.name] = v
            self.rows[t.idb].append(row)

    # --- defects ---------------------------------------------------------------------------------


__all__ = ["ID_FORMATS", "V6Generator", "code_list", "key_text", "tables", "ward_code_masks"]
