"""The synthetic rows of the 47 tables generated from the v6 rules file (synthetic/v6_tables.py)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from mhsds_pipeline.synthetic import v6_tables as v6
from mhsds_pipeline.synthetic.activity import ActivityModel
from mhsds_pipeline.synthetic.defects import DefectLog
from mhsds_pipeline.synthetic.frames import month_start
from mhsds_pipeline.synthetic.generator import generate
from mhsds_pipeline.synthetic.spine import Window, build_spine

END = "2026-10"
NHS_CODE = re.compile(r"^MHS\d{5}$")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("v6gen")
    out = {}
    for name, flag in (("a", True), ("b", True), ("off", False)):
        d = base / name
        s = generate(f"sqlite:///{d / 'epr.sqlite'}", scale=0.05, seed=5, end_period=END, months=2,
                     out_dir=d / "epr", v6_tables=flag)  # fmt: skip
        out[name] = (d, s)
    return out


@pytest.fixture(scope="module")
def model():
    window = Window.ending(END, 2)
    spine = build_spine(5, 0.05, window)
    m = ActivityModel(spine, 0.05, 5)
    g = v6.V6Generator(spine, m, 5, DefectLog())
    for k in range(window.months):
        g.add_month(k, m.month(k), {"clinician_id": np.zeros(0, dtype=np.int64)})
    g.generate()
    return g


def test_deterministic(runs):
    (a, _), (b, _) = runs["a"], runs["b"]
    for f in ("ground_truth.csv", "expected_keys.parquet"):
        assert (a / "epr" / f).read_bytes() == (b / "epr" / f).read_bytes()


def test_existing_tables_unchanged(runs):
    (on, s_on), (off, s_off) = runs["a"], runs["off"]
    old = {t for t, n in s_off.row_counts.items() if n}
    assert {t: s_on.row_counts[t] for t in old} == {t: s_off.row_counts[t] for t in old}
    gt_on = pd.read_csv(on / "epr" / "ground_truth.csv", dtype=str)
    gt_off = pd.read_csv(off / "epr" / "ground_truth.csv", dtype=str)
    pd.testing.assert_frame_equal(gt_on[~gt_on.rule.str.match(NHS_CODE)].reset_index(drop=True), gt_off)
    k_on = pd.read_parquet(on / "epr" / "expected_keys.parquet")
    k_off = pd.read_parquet(off / "epr" / "expected_keys.parquet")
    models = {t.model for t in v6.tables()}
    kept = k_on[~k_on.mhsds_table.isin(models)]
    assert sorted(map(tuple, kept.values.tolist())) == sorted(map(tuple, k_off.values.tolist()))


def test_every_generated_table_gets_rows(runs):
    _, s = runs["a"]
    for t in v6.tables():
        assert s.row_counts[t.epr] > 0, t.epr


def test_expected_keys_name_real_rows(runs):
    d, _ = runs["a"]
    import sqlite3

    keys = pd.read_parquet(d / "epr" / "expected_keys.parquet")
    con = sqlite3.connect(d / "epr.sqlite")
    for t in v6.tables():
        ids = {r[0] for r in con.execute(f"SELECT record_id FROM {t.epr}")}
        mine = keys[keys.mhsds_table == t.model]
        assert set(mine.epr_key) <= ids, t.model
        assert not mine.duplicated().any()
    staff = keys[keys.mhsds_table == "mhs901_staff_details"]
    assert staff.groupby("period").size().nunique() == 1  # scope "all": every row every period


def _defect_rows(g):
    return {id(d.row) for d in g.defects}


def test_clean_rows_pass_formats_codes_and_dates(model):
    g = model
    bad = _defect_rows(g)
    w = g.window
    for t in v6.tables():
        if t.idb == "MHS608AnonSelfAssess":
            continue
        rows = [r for r in g.rows[t.idb] if id(r) not in bad]
        for c in t.columns.values():
            kind, lo, hi = v6.parse_format(c.fmt)
            vals = [r.get(c.name) for r in rows if r.get(c.name) is not None]
            if c.mandatory:
                assert all(r.get(c.name) is not None for r in rows), (t.idb, c.name)
            if c.data_type == "varchar" and kind:
                assert all(lo <= len(x) <= hi for x in vals), (t.idb, c.name)
                if kind == "n":
                    assert all(x.isdigit() for x in vals), (t.idb, c.name)
            if c.data_type == "integer" and kind:
                assert all(0 <= x < 10**hi for x in vals), (t.idb, c.name)
            if c.data_type == "time":
                assert all(re.fullmatch(r"\d\d:\d\d:\d\d", x) for x in vals), (t.idb, c.name)
            if t.rules_of("code_list", c.name):
                codes, _ = v6.code_list(t, c.name)
                assert set(map(str, vals)) <= set(codes), (t.idb, c.name)
        for r in t.rules_of("date_order"):
            ch = r["check"]
            for row in rows:
                b, a = row.get(ch["before"]), row.get(ch["after"])
                if b is not None and a is not None:
                    assert np.datetime64(a, "D") >= np.datetime64(b, "D"), (t.idb, r["id"])
        # dates keyed in month k lie in it (parent-scoped rows: before the window)
        for row in rows:
            if row["_month"] < 0:
                continue
            ms = month_start(w.first + row["_month"]).astype("datetime64[D]")
            me = month_start(w.first + row["_month"] + 1).astype("datetime64[D]")
            for c in t.columns.values():
                x = row.get(c.name)
                if x is None or c.data_type not in ("date", "timestamp") or "BirthDate" in c.name:
                    continue
                day = np.datetime64(x, "D")
                if t.scope["kind"] == "parent":
                    # before the window, or (a spell's or ward stay's child) on or after the
                    # parent's start when the parent started in the window, keyed in that month
                    a = row["_anchor"]
                    floor = np.datetime64(a.lo, "D") - np.timedelta64(1, "D") if not np.isnat(a.lo) else None
                    assert day < w.start.astype("datetime64[D]") or (floor is not None and day >= floor), (
                        t.idb,
                        c.name,
                    )
                    if floor is not None:
                        assert day >= floor or day < w.start.astype("datetime64[D]"), (t.idb, c.name)
                else:
                    assert ms <= day < me, (t.idb, c.name, day)
        # keys unique among the rows keyed in the same month
        per_month = Counter((row["_month"], v6.key_text(t, row)) for row in rows if row["_month"] >= 0)
        assert max(per_month.values(), default=1) == 1, t.idb


def test_one_defect_per_family_per_table_and_month(model):
    g = model
    fam = Counter()
    for d in g.defects:
        kinds = {r["id"]: r["check"]["type"] for r in d.table.rules}
        family = {"not_null": "blank", "format": "format", "code_list": "national_code",
                  "date_in_period": "av", "references": "orphan", "always": "always"}[kinds[d.rule]]  # fmt: skip
        fam[(d.table.idb, d.row["_month"] if d.only_month is None else d.only_month, family)] += 1
    assert max(fam.values()) <= 1 or all(k[0] == "MHS608AnonSelfAssess" for k, n in fam.items() if n > 1)
    families = Counter(k[2] for k in fam)
    assert families["blank"] >= 30 and families["orphan"] >= 30 and families["av"] >= 20
    assert families["format"] >= 10
    tables_hit = {k[0] for k in fam}
    assert len(tables_hit) >= 44  # all but ward details (and a table without candidates at this scale)


def test_ground_truth_rows_for_v6_name_the_nhs_code_and_key(runs):
    d, _ = runs["a"]
    gt = pd.read_csv(d / "epr" / "ground_truth.csv", dtype=str, keep_default_na=False)
    mine = gt[gt.rule.str.match(NHS_CODE)]
    assert len(mine) > 100
    models = {t.model: t for t in v6.tables()}
    assert set(mine.mhsds_table) <= set(models)
    for r in mine.itertuples():
        assert r.epr_key.count("|") == len(models[r.mhsds_table].key) - 1
    assert (mine[mine.mhsds_table == "mhs608_anon_self_assess"].rule == "MHS60815").all()
