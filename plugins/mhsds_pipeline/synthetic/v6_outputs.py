"""Outputs of the synthetic v6 tables (a mixin of :class:`~mhsds_pipeline.synthetic.v6_tables.V6Generator`):
the EPR frames, the extract-scope masks computed independently of the SQL, the ground truth."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mhsds_pipeline.synthetic.frames import month_index, month_start
from mhsds_pipeline.synthetic.v6_spec import (
    NAT_D,
    key_text,
    tables,
)


class V6Outputs:
    """Frames, masks and ground truth of the generated rows."""

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
