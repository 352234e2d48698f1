"""Planted defects of the synthetic v6 tables (a mixin of :class:`~mhsds_pipeline.synthetic.v6_tables.V6Generator`).

Per table per month, on rows with no children, one row per family: Blank, Format, National Code,
AV (a date after the whole window) and an orphan; the ground truth names the NHS error code and
the MHSDS row key (docs/source_contract.md "Planted defects")."""

from __future__ import annotations

import re

import numpy as np

from mhsds_pipeline.synthetic.frames import format_ids, month_start
from mhsds_pipeline.synthetic.v6_spec import (
    ANCHOR_COLUMNS,
    DAY_D,
    FAMILIES,
    ORPHAN_BASE,
    Defect,
    Table,
    _fits,
    _time_twin_of,
    code_list,
    key_text,
    parse_format,
)


class V6Defects:
    """Planting the defects (uses the generator's rows, tables and random streams)."""

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
        # the row's own parent, not a reference table (MHS901 staff: a warning, no group rejection)
        refs = [r for r in t.rules_of("references") if not str(r["check"]["parent"]).startswith("MHS9")]
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
