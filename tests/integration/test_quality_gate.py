"""The quality gate against the generator's ground truth (issue #3).

A small synthetic month with every kind of planted defect goes through extract -> load ->
raw checks -> dbt -> quality gate -> publish, in process (no Airflow: the DAG path is covered by
test_end_to_end). Then:

* every planted defect is found by the rule that should find it, and no rule fires on a clean
  row (precision and recall both 100 %, printed);
* group rejections cascade exactly to the descendants of rejected rows, recomputed here in
  Python from the marts (an implementation independent of the engine's SQL);
* the submission tables exclude exactly the quarantined rows, quarantine keeps them with rule
  ids, dq_results / dqmi / Data Docs are published, without identifiers;
* a critical failure (file-level rejection) stops promotion and leaves the last good outputs.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from dataclasses import replace

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import scratch_settings

from mhsds_pipeline import pipeline
from mhsds_pipeline.quality.gate import QualityGateError
from mhsds_pipeline.quality.rules import SEVERITIES, load_catalogue

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LATEST = "2026-10"

#: ground-truth rule -> the catalogue rule id(s) that must report it, all of them and nothing
#: else on that row (None: resolved per row below; an empty tuple: a valid value, never flagged)
DETECTED_BY: dict[str, str | tuple[str, ...] | None] = {
    "NHS_NUMBER_INVALID": "MHS00165",
    # blank, while its status still says traced (01): v6 reports both the blank number and the
    # status that should then be 07
    "NHS_NUMBER_MISSING": ("MHS00111", "MHS00119"),
    "POSTCODE_DEFAULT": "LOCAL_MHS001_POSTCODE_DEFAULT",
    "POSTCODE_INVALID": "MHS00125",
    "ETHNICITY_NOT_KNOWN": "LOCAL_MHS001_ETHNIC_NOT_KNOWN",
    "SNOMED_CHECK_DIGIT": "MHS20230",
    "SNOMED_PARTITION": "MHS20230",
    "SNOMED_NOT_IN_REFSET": "LOCAL_MHS202_PROCEDURE_REFSET",
    "CONTACT_OUTSIDE_PERIOD": "MHS20167",
    "ORPHAN_CONTACT": "MHS20142",
    "ORPHAN_REFERRAL": "MHS10101",
    "DUPLICATE_CONTACT_ID": "MHS20143",
    "DATE_ORDER_REFERRAL": "MHS10128",
    "DATE_ORDER_SPELL": "MHS50120",
    "DATE_ORDER_WARD_STAY": "MHS50216",
    "ASSESSMENT_SCORE_OUT_OF_RANGE": None,  # table-dependent, resolved below
    # orphans (parent missing from the EPR or not in the period): SDCS group rejections
    "ORPHAN_SPELL": "MHS50102",
    "ORPHAN_WARD_STAY": "MHS50203",
    "ORPHAN_DIAGNOSIS": "MHS60412",
    "ORPHAN_REFERRAL_TEAM": "MHS10228",
    "ORPHAN_ASSESSMENT": "MHS60612",
    # hostile values (issue 10): the v6 format rule of the column they reach
    "OVERSIZE_CODE": ("MHS10109", "MHS10110"),  # OrgIDComm, 120,000 characters: bad format, no such org
    # a line break or ESC inside the postcode breaks its v6 format (record rejection) and, as the
    # separator is no longer a space, the UK postcode pattern too (severity 1 warning): both report
    "POSTCODE_CONTROL_CHARACTER": ("MHS00169", "MHS00125"),
    "DIAGNOSIS_FREE_TEXT": None,  # MHS60414 (primary) or MHS60514 (secondary), resolved below
    "FORMULA_LIKE_TEXT": (),  # a valid max an20 value: published, escaped in the CSV (test below)
    "MALFORMED_DATE": "MHS50116",  # PlannedDischDateHospProvSpell: incorrect data format
    # MHS204IndirectActivity: one of each kind of v6 rule, and an orphan (group rejection)
    "INDIRECT_DATE_MISSING": "MHS20407",  # Blank
    "INDIRECT_DURATION_FORMAT": "MHS20411",  # Format (max n4)
    "INDIRECT_PERSON_CONSULTED_INVALID": "MHS20437",  # National Code (warning)
    "INDIRECT_SNOMED_CHECK_DIGIT": "MHS20431",  # AV: fails SNOMED CT checks
    "INDIRECT_OUTSIDE_PERIOD": "MHS20435",  # AV_1: dated before the RP, keyed in it
    "ORPHAN_INDIRECT_ACTIVITY": "MHS20403",
}

#: A ground-truth rule that is itself an NHS error code (the generated v6 tables, synthetic/
#: v6_tables.py) is reported by that rule, and its epr_key is the MHSDS row key already.
NHS_CODE = re.compile(r"^MHS\d{5}$")

#: child table -> (parent table, child column, parent column): the cascade edges.
EDGES = {
    "mhs002_gp": ("mhs001_mpi", "LocalPatientID", "LocalPatientID"),
    "mhs101_referral": ("mhs001_mpi", "LocalPatientID", "LocalPatientID"),
    "mhs102_other_service_type": ("mhs101_referral", "ServiceRequestID", "ServiceRequestID"),
    "mhs201_care_contact": ("mhs101_referral", "ServiceRequestID", "ServiceRequestID"),
    "mhs202_care_activity": ("mhs201_care_contact", "CareContactID", "CareContactID"),
    "mhs204_indirect_activity": ("mhs101_referral", "ServiceRequestID", "ServiceRequestID"),
    "mhs501_hosp_prov_spell": ("mhs101_referral", "ServiceRequestID", "ServiceRequestID"),
    "mhs502_ward_stay": ("mhs501_hosp_prov_spell", "HospProvSpellID", "HospProvSpellID"),
    "mhs604_prim_diag": ("mhs101_referral", "ServiceRequestID", "ServiceRequestID"),
    "mhs605_sec_diag": ("mhs101_referral", "ServiceRequestID", "ServiceRequestID"),
    "mhs606_coded_score_assessment_refer": ("mhs101_referral", "ServiceRequestID", "ServiceRequestID"),
    "mhs607_coded_score_assessment_act": ("mhs202_care_activity", "CareActID", "CareActID"),
}


def _v6_edges() -> dict[str, tuple[str, str, str]]:
    """The generated v6 tables' single-column ``references`` rules as cascade edges: rejecting
    rules whose parent column is the parent's whole key (one parent row per child; MHS903's
    WardCode has many ward stays, any valid one keeps it, so it is no edge of this model)."""
    from mhsds_pipeline.config import load_settings
    from mhsds_pipeline.contracts import load_contracts

    keys = {m: tuple(c.key) for m, c in load_contracts(load_settings().dbt_project_dir).items()}
    out = {}
    for rule in load_catalogue().rules:
        c = rule.check
        if rule.type != "references" or len(c["columns"]) != 1 or rule.model in EDGES:
            continue
        if rule.severity not in ("record rejected", "group rejected"):
            continue
        ((child_col, parent_col),) = c["columns"].items()
        if keys.get(c["parent"]) == (parent_col,):  # the catalogue names parents by model
            out.setdefault(rule.model, (c["parent"], child_col, parent_col))
    return out


EDGES.update(_v6_edges())


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Two months of synthetic EPR: the earlier month checks the "as at RP end" rebuild."""
    from mhsds_pipeline.synthetic.generator import generate

    base = tmp_path_factory.mktemp("gate_source")
    generate(
        f"sqlite:///{base / 'epr.sqlite'}",
        scale=0.05,
        seed=11,
        end_period=LATEST,
        months=2,
        out_dir=base / "epr",
    )
    return base


@pytest.fixture(scope="module", params=["2026-09", LATEST])
def gated(request, source, tmp_path_factory):
    period = request.param
    base = tmp_path_factory.mktemp(f"gate_{period}")
    settings = scratch_settings(base, source=source / "epr.sqlite")
    summary = pipeline.run_all(period, f"gate_run_{period}", settings)
    return source, settings, summary, period


def _failures(settings) -> list[tuple[str, str, str, str | None]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("SELECT rule_id, table_name, row_key, cause FROM dq.rule_failures").fetchall()


def _expected(base, period) -> set[tuple[str, str]]:
    """(rule id, MHSDS row key) for every planted defect of the period."""
    truth = [r for r in _read_csv(base / "epr" / "ground_truth.csv") if r["period"] == period]
    src = sqlite3.connect(base / "epr.sqlite")
    want = set()
    for r in truth:
        key = r["epr_key"]
        if NHS_CODE.match(r["rule"]):  # a generated v6 table: the code and the MHSDS key
            want.add((r["rule"], key))
            continue
        rule = DETECTED_BY[r["rule"]]
        if isinstance(rule, tuple):
            want.update((each, key) for each in rule)
            continue
        if r["rule"] == "ASSESSMENT_SCORE_OUT_OF_RANGE":
            ref, act, tool, score, done = src.execute(
                "SELECT referral_id, intervention_id, tool_snomed, score, completed_at FROM assessments "
                "WHERE assessment_id = ?",
                (key,),
            ).fetchone()
            if r["mhsds_table"] == "mhs607_coded_score_assessment_act":
                rule, key = "MHS60707", f"{act}|{tool}|{score}"
            else:
                rule, key = "MHS60607", f"{ref}|{tool}|{done[:19]}"
        elif r["rule"] == "ORPHAN_ASSESSMENT":  # MHS606 key: referral, tool, completion time
            ref, tool, done = src.execute(
                "SELECT referral_id, tool_snomed, completed_at FROM assessments WHERE assessment_id = ?",
                (key,),
            ).fetchone()
            key = f"{ref}|{tool}|{done[:19]}"
        elif r["rule"] in ("ORPHAN_DIAGNOSIS", "DIAGNOSIS_FREE_TEXT"):  # key: referral, time, code
            ref, done, code = src.execute(
                "SELECT referral_id, diagnosed_at, code FROM diagnoses WHERE diagnosis_id = ?", (key,)
            ).fetchone()
            key = f"{ref}|{done[:19]}|{code}"
            if r["rule"] == "DIAGNOSIS_FREE_TEXT":
                rule = "MHS60514" if r["mhsds_table"] == "mhs605_sec_diag" else "MHS60414"
        elif r["epr_table"] == "indirect_activities":  # key: referral, team, date, time
            ref, team, start = src.execute(
                "SELECT referral_id, team_id, start_at FROM indirect_activities WHERE indirect_activity_id = ?",
                (key,),
            ).fetchone()
            key = f"{ref}|{team}|{start[:10] if start else ''}|{start[11:19] if start else ''}"
        want.add((rule, key))
    return want


def _read_csv(path):
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_planted_defect_found_by_its_rule_and_nothing_clean_flagged(gated, capsys):
    base, settings, _, period = gated
    want = _expected(base, period)
    got = {
        (rule, key)
        for rule, _table, key, cause in _failures(settings)
        if cause != "rejected_parent"  # cascade rows are checked in the next test
    }
    true_pos = want & got
    precision = len(true_pos) / len(got) if got else 1.0
    recall = len(true_pos) / len(want) if want else 1.0
    with capsys.disabled():
        print(
            f"\nquality gate vs ground truth ({period}): {len(want)} planted, {len(got)} flagged, "
            f"precision {precision:.1%}, recall {recall:.1%}"
        )
    assert len(want) >= 30, "the generator should plant defects of every kind"
    by_rule = [v if isinstance(v, tuple) else (v,) for v in DETECTED_BY.values() if v]
    assert {r for r, _ in want} >= {rule for rules in by_rule for rule in rules} | {"MHS60414"}
    assert got - want == set(), f"flagged but not planted (false positives): {sorted(got - want)[:10]}"
    assert want - got == set(), f"planted but not found (misses): {sorted(want - got)[:10]}"
    assert precision == 1.0 and recall == 1.0


def test_formula_like_values_are_published_and_escaped_in_the_submission_csv(gated):
    """A CareProfLocalID such as ``=SUM(A1:A9)`` is a valid v6 value (max an20): it is published
    as it is in the Parquet tables, escaped with one leading apostrophe in the submission CSV, and
    read back unchanged by the package reader."""
    import csv

    from mhsds_pipeline.submission.idb import read_csv, table_specs

    base, settings, _, period = gated
    truth = [
        r
        for r in _read_csv(base / "epr" / "ground_truth.csv")
        if r["period"] == period and r["rule"] == "FORMULA_LIKE_TEXT"
    ]
    assert truth, "the generator plants formula-like values every month"
    src = sqlite3.connect(base / "epr.sqlite")
    planted = {
        src.execute(
            "SELECT clinician_id FROM assessments WHERE assessment_id = ?", (r["epr_key"],)
        ).fetchone()[0]
        for r in truth
    }
    assert all(v.startswith("=") for v in planted)
    out = settings.output_dir / period
    published = pq.read_table(out / "mhsds" / "MHS606CodedScoreAssessmentRefer.parquet")
    assert planted <= set(published.column("CareProfLocalID").to_pylist())
    (path,) = (out / "submission").rglob("MHS606CodedScoreAssessmentRefer*.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert {f"'{v}" for v in planted} <= set(cells)
    spec = next(
        s for s in table_specs(settings.dbt_project_dir) if s.idb_table == "MHS606CodedScoreAssessmentRefer"
    )
    assert planted <= set(read_csv(path, spec).column("CareProfLocalID").to_pylist())


def test_group_rejections_cascade_to_exactly_the_descendants(gated):
    _, settings, _, _ = gated
    failures = _failures(settings)
    catalogue = {r.id: r for r in load_catalogue().rules}
    rejecting = {"record rejected", "group rejected"}
    direct = defaultdict(set)
    cascaded = defaultdict(set)
    for rule, table, key, cause in failures:
        if catalogue[rule].severity not in rejecting:
            continue
        (cascaded if cause == "rejected_parent" else direct)[table].add(key)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:

        def rows(table, cols):
            return con.execute(
                f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in cols)} FROM analytics.{table}"
            ).fetchall()

        from mhsds_pipeline.contracts import load_contracts

        contracts = load_contracts(settings.dbt_project_dir)
        rejected = {t: set(keys) for t, keys in direct.items()}
        expect_cascade = defaultdict(set)
        order = load_catalogue()
        for child in (order.model(t) for t in order.cascade_order):  # dq.rule_failures holds relations
            if child not in EDGES:
                continue
            parent, ccol, pcol = EDGES[child]
            pkey = list(contracts[parent].key)
            bad_parents = {
                r[len(pkey)]
                for r in rows(parent, [*pkey, pcol])
                if "|".join(str(v) for v in r[: len(pkey)]) in rejected.get(parent, set())
            }
            ckey = list(contracts[child].key)
            for r in rows(child, [*ckey, ccol]):
                key = "|".join(
                    "" if v is None else (str(v)[:19] if hasattr(v, "hour") else str(v))
                    for v in r[: len(ckey)]
                )
                # a row under a rejected parent is group-rejected with it, whether or not a rule
                # of its own also rejects it (SDCS reports both)
                if r[len(ckey)] in bad_parents:
                    expect_cascade[child].add(key)
            rejected.setdefault(child, set()).update(expect_cascade[child])
    assert sum(len(v) for v in expect_cascade.values()) > 0, "the planted defects should cascade"
    assert {t: v for t, v in cascaded.items() if v} == {t: v for t, v in expect_cascade.items() if v}


def test_submission_excludes_quarantined_rows_and_dq_outputs_are_published(gated):
    _, settings, summary, period = gated
    out = settings.output_dir / period
    manifest = json.loads((out / "manifest.json").read_text())
    gate = json.loads((out / "dq" / "gate.json").read_text())
    assert gate["status"] == "passed" and manifest["quality"]["status"] == "passed"
    assert gate["rejected_rows"] == manifest["quality"]["rejected_rows"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for idb, n_rejected in gate["rejected_rows"].items():  # IDB table names, as everywhere
            model = manifest["tables"][idb]["dbt_model"]
            built = con.execute(f"SELECT COUNT(*) FROM analytics.{model}").fetchone()[0]
            assert manifest["tables"][idb]["rows"] == built - n_rejected, idb
            quarantined = pq.read_table(out / "quarantine" / f"{idb}.parquet")
            assert {"_rule_id", "_severity", "_cause"} <= set(quarantined.column_names)
            assert set(quarantined.column("_severity").to_pylist()) <= {"record rejected", "group rejected"}
    results = pq.read_table(out / "dq" / "dq_results.parquet").to_pylist()
    sources = {r["source"] for r in results}
    assert {"dbt", "mhsds_rule", "local_rule", "dqmi", "file"} <= sources
    rule_rows = [r for r in results if r["source"] in ("mhsds_rule", "local_rule")]
    # One row per rule per table, both engines' counts on it, and they agree on every rule.
    assert (
        len({(r["check_id"], r["table_name"]) for r in rule_rows})
        == len(rule_rows)
        == len(load_catalogue().rules)
    )
    assert not [r["check_id"] for r in rule_rows if r["status"] == "error" or r["engines_agree"] is False]
    assert all(
        r["count_gx"] == r["count_rule_engine"] == r["numerator"]
        for r in rule_rows
        if r["status"] != "not_applicable"
    )
    assert {r["severity"] for r in results} <= set(SEVERITIES)
    # IDB table names only (the warehouse relation names stay inside the warehouse).
    assert not [r["table_name"] for r in results if r["table_name"] and r["table_name"].startswith("mhs")]
    # Record-rejecting rules say so; nothing that rejects rows calls itself a warning.
    by_id = {r.id: r for r in load_catalogue().rules}
    assert all(r["severity"] == by_id[r["check_id"]].severity for r in rule_rows)
    dqmi = pq.read_table(out / "dq" / "dqmi.parquet")
    assert dqmi.num_rows >= 10
    assert (out / "dq" / "dqmi_report.html").exists()
    # DQMI on NHS England's basis: the records SDCS would accept (the rows published), with the
    # score over every built row beside it, labelled.
    summary = json.loads(dqmi.schema.metadata[b"dqmi"])
    assert summary["records_basis"].startswith("the records SDCS would accept")
    assert summary["dataset_score_before_rejections"] is not None
    items = {(r["table_name"], r["column_name"]): r for r in dqmi.to_pylist()}
    nhs = items[("MHS001MPI", "NHSNumber")]
    assert nhs["total"] == manifest["tables"]["MHS001MPI"]["rows"]  # rejected patients not scored
    assert gate["rejected_rows"].get("MHS001MPI", 0) > 0  # so the two bases differ here
    before = next(r for r in results if r["check_id"] == "dqmi.dataset_score_before_rejections")
    assert "not NHS England's basis" in before["description"]
    assert "Before rejections" in (out / "dq" / "dqmi_report.html").read_text()
    docs = out / "data_docs" / "index.html"
    assert docs.exists()
    # No patient identifiers in IG-facing outputs: NHS numbers (999 range) or local patient ids.
    text = "".join(p.read_text(errors="ignore") for p in (out / "data_docs").rglob("*.html"))
    text += (out / "dq" / "dqmi_report.html").read_text() + json.dumps(results, default=str)
    assert not re.search(r"\b999\d{7}\b", text)
    assert not re.search(r"\bP\d{7}\b", text)


def test_critical_failure_stops_promotion_and_keeps_last_good_outputs(gated):
    _, settings, _, period = gated
    if period != LATEST:
        pytest.skip("checked once, on the latest period")
    current = (settings.output_dir / period).resolve()
    manifest = (settings.output_dir / period / "manifest.json").read_text()
    # The submitting organisation no longer matches the header: a file-level rejection.
    wrong = replace(settings, org_id_provider="RXX", allowed_org_ids=("R1A", "RXX"))
    with pytest.raises(QualityGateError) as err:
        pipeline.quality(period, "gate_run_bad", wrong)
    message = str(err.value)
    assert period in message and "MHS00030" in message and "MHS000Header" in message
    assert err.value.verdict is not None and "MHS00030" in err.value.verdict.failed_rules
    assert "untouched" in message
    from mhsds_pipeline.publish import PublicationError

    with pytest.raises(PublicationError, match="quality gate failed"):
        pipeline.publish(period, "gate_run_bad", wrong)
    assert (settings.output_dir / period).resolve() == current
    assert (settings.output_dir / period / "manifest.json").read_text() == manifest


def test_sdcs_reports_have_the_sdcs_layout_and_match_dq_results(gated):
    """dq/sdcs/*.csv: the four SDCS summary-report files, their rows counting what dq_results
    counts, the v6 message texts with values filled, and never an NHS number."""
    import csv

    from mhsds_pipeline.quality.sdcs import COLUMNS, FILES

    _, settings, _, period = gated
    out = settings.output_dir / period
    results = pq.read_table(out / "dq" / "dq_results.parquet").to_pylist()
    catalogue = load_catalogue()
    files = {}
    for name in FILES:
        with (out / "dq" / "sdcs" / name).open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            assert next(reader) == COLUMNS
            files[name] = [dict(zip(COLUMNS, row, strict=True)) for row in reader]
    per_code = defaultdict(lambda: defaultdict(int))
    for name in ("validations.csv", "data_quality.csv"):
        for row in files[name]:
            per_code[name][row["CODE"]] += 1
    expected = defaultdict(dict)
    for r in results:
        if r["source"] not in ("mhsds_rule", "local_rule") or not r["numerator"]:
            continue
        rule = catalogue.rule(r["check_id"])
        if rule.table_level:
            continue
        name = "validations.csv" if rule.severity.endswith("rejected") else (
            "data_quality.csv" if "warning" in rule.severity else None
        )  # fmt: skip
        if name:
            expected[name][rule.id] = r["numerator"]
    assert expected["validations.csv"] and expected["data_quality.csv"], "the planted defects should show"
    for name in ("validations.csv", "data_quality.csv"):
        assert dict(per_code[name]) == expected[name], name
    row = next(r for r in files["validations.csv"] if r["CODE"] == "MHS20167")
    assert row["REPORT_TYPE"] == "Validation Failures"
    assert row["DESCRIPTION"].startswith("Record rejected - [M201010]CareContDate is before the [M000050]")
    assert "<" not in row["DESCRIPTION"]  # placeholders filled, the header's period too
    assert f"[M000050]ReportingPeriodStartDate={period}-01" in row["DESCRIPTION"]
    assert row["DATA_ITEM1"] == "[M201903]CareContactID" and row["DATA_VALUE1"]
    nhs_row = next(r for r in files["validations.csv"] if r["CODE"] == "MHS00165")
    assert "[withheld]" in nhs_row["DESCRIPTION"]
    aggregation = {r["CODE"]: int(r["NUMERATOR"]) for r in files["aggregation.csv"]}
    assert (
        aggregation["MHSARV101"]
        == json.loads((out / "manifest.json").read_text())["tables"]["MHS101Referral"]["rows"]
    )
    assert {r["DESCRIPTION"] for r in files["diagnostics.csv"]} >= {
        "Completed NHS Number",
        "Valid Ethnic Category",
    }
    text = "".join((out / "dq" / "sdcs" / n).read_text() for n in FILES)
    assert not re.search(r"\b999\d{7}\b", text)


def test_ig_page_names_the_rules_that_fired_and_shows_no_identifiers(gated):
    """dq/index.html, the IG page: published beside dq_results, referenced by the manifest, naming
    every rule that fired with its rows; on a failed gate it is written before the error."""
    from mhsds_pipeline.quality.gate import work_dir

    _, settings, _, period = gated
    out = settings.output_dir / period
    page = (out / "dq" / "index.html").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["quality"]["ig_page"] == "dq/index.html" and "index.html" in manifest["quality"]["dq_files"]
    )
    results = pq.read_table(out / "dq" / "dq_results.parquet").to_pylist()
    fired = {
        r["check_id"]
        for r in results
        if r["source"] in ("mhsds_rule", "local_rule") and r["status"] == "failed"
    }
    assert "MHS00165" in fired and "MHS20142" in fired  # planted: invalid NHS number, orphan contact
    for rule_id in fired:
        assert rule_id in page, rule_id
    nhs = next(r for r in results if r["check_id"] == "MHS00165")
    assert f"MHS001MPI: {nhs['numerator']:,}" in page
    assert (
        "../data_docs/validations/marts__MHS001MPI/" in page and "No previous month to compare with" in page
    )
    assert not re.search(r"\b999\d{7}\b", page) and not re.search(r"\bP\d{7}\b", page)
    if period != LATEST:
        return
    # A failed gate still writes its IG page (the file-level rejection first) before raising.
    wrong = replace(settings, org_id_provider="RXX", allowed_org_ids=("R1A", "RXX"))
    bad = work_dir(wrong, period, "gate_run_bad") / "dq" / "index.html"
    if not bad.exists():  # the critical-failure test did not run first
        with pytest.raises(QualityGateError):
            pipeline.quality(period, "gate_run_bad", wrong)
    failed = bad.read_text()
    assert "Failed" in failed and "MHS00030" in failed and "not promoted" in failed
    assert failed.index("MHS00030") < failed.index("MHS00165")
