"""The rules catalogue: keyed by NHS England's codes, well formed, compiles for both warehouses,
matches the committed suites, and refuses a rule that contradicts the v6.0 rules file."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mhsds_pipeline.config import load_settings
from mhsds_pipeline.contracts import load_contracts
from mhsds_pipeline.period import ReportingPeriod
from mhsds_pipeline.quality.gate import sql_context
from mhsds_pipeline.quality.gx_suites import EXPORT_DIR, EXPORT_PERIOD, render_suites
from mhsds_pipeline.quality.nhs_rules import load_nhs_rules
from mhsds_pipeline.quality.rules import SEVERITIES, CatalogueError, fail_predicate, load_catalogue

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def _ctx(dialect: str):
    settings = replace(load_settings(), org_id_provider="R1A", warehouse_target=dialect)
    return sql_context(settings, ReportingPeriod.parse(EXPORT_PERIOD))


def test_every_rule_names_real_tables_and_columns(catalogue):
    contracts = {c.idb_table: c for c in load_contracts(load_settings().dbt_project_dir).values()}
    assert len(catalogue.rules) >= 250
    for rule in catalogue.rules:
        assert rule.table in contracts, rule.id
        assert rule.model == contracts[rule.table].model, rule.id
        if rule.column:
            assert rule.column in contracts[rule.table].column_names, rule.id
        assert rule.severity in SEVERITIES, rule.id
    assert set(catalogue.cascade_order) == set(contracts)


def test_coded_rules_take_level_consequence_and_message_from_the_v6_file(catalogue):
    nhs = load_nhs_rules()
    assert len(nhs) == 1134
    coded = [r for r in catalogue.rules if r.nhs]
    assert len(coded) >= 230
    for rule in coded:
        ref = nhs[rule.id]
        assert (rule.table, rule.consequence, rule.level, rule.message) == (
            ref.table, ref.consequence, ref.level, ref.message
        ), rule.id  # fmt: skip
    for rule in catalogue.rules:
        if not rule.nhs:
            assert rule.id.startswith("LOCAL_") and rule.why and rule.message, rule.id


def _load_with(tmp_path, entry: str):
    """The real catalogue with one rule appended (written next to a copy of the v6 file)."""
    from mhsds_pipeline.quality.rules import CATALOGUE

    (tmp_path / "reference").mkdir()
    ref = CATALOGUE.parent / "reference" / "MHSDS_validation_rules_v6.0.csv"
    (tmp_path / "reference" / ref.name).write_bytes(ref.read_bytes())
    for part in ("mhsds_v6_rules_tables.yml",):  # the generated part the catalogue includes
        (tmp_path / part).write_bytes((CATALOGUE.parent / part).read_bytes())
    path = tmp_path / "rules.yml"
    path.write_text(CATALOGUE.read_text() + entry)
    return load_catalogue.__wrapped__(path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "  - {id: MHS99999, table: MHS001MPI, column: Postcode, check: {type: not_null}}\n",
            "not an error code",
        ),
        (
            "  - {id: MHS10111, table: MHS001MPI, column: Postcode, check: {type: not_null}}\n",
            "MHS101Referral rule",
        ),
        ("  - {id: MHS00123, table: MHS001MPI, column: Gender, check: {type: not_null}}\n", "not Gender"),
        (
            "  - {id: MHS00123, table: MHS001MPI, column: Postcode, consequence: Warning, check: {type: not_null}}\n",
            "come from the v6.0 rules file",
        ),
        (
            "  - {id: LOCAL_X, table: MHS001MPI, column: Postcode, consequence: Warning, check: {type: not_null}}\n",
            "must state",
        ),
        (
            "  - {id: MHS00103, table: MHS001MPI, column: LocalPatientID, check: {type: not_null}}\n",
            "defined twice",
        ),
        (
            "  - {id: MHS00123, table: mhs001_mpi, column: Postcode, check: {type: not_null}}\n",
            "not an IDB table",
        ),
    ],
)
def test_a_rule_that_contradicts_the_v6_file_is_refused(tmp_path, entry, message):
    with pytest.raises(CatalogueError, match=message):
        _load_with(tmp_path, entry)


def test_mandatory_tables_come_from_the_catalogue(catalogue):
    from mhsds_pipeline.submission.idb import table_specs

    specs = table_specs(load_settings().dbt_project_dir)
    assert {s.idb_table for s in specs if s.mandatory} == set(catalogue.mandatory_tables)
    assert catalogue.mandatory_tables == ("MHS000Header", "MHS001MPI", "MHS002GP", "MHS101Referral")


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_every_rule_compiles_to_sql(catalogue, dialect):
    ctx = _ctx(dialect)
    for rule in catalogue.rules:
        if rule.table_level:
            continue
        sql = fail_predicate(rule, ctx)
        assert sql and "%%" not in sql, rule.id
        if rule.type == "references":
            assert "dq.rule_failures" in sql  # a rejected parent counts as missing


def test_mhsds_consequences_follow_the_specification(catalogue):
    by_id = {r.id: r for r in catalogue.rules}
    assert by_id["MHS00165"].severity == "record rejected"  # NHS number wrong format
    assert by_id["MHS00111"].severity == "severity 1 warning"  # NHS number blank
    assert by_id["MHS00120"].severity == "severity 1 warning"  # birth date blank: not a rejection
    assert by_id["MHS10101"].severity == "group rejected"  # referral without valid MPI
    assert by_id["MHS20167"].severity == "record rejected"  # contact before the RP
    assert by_id["MHS00025"].severity == "file rejected"  # more than one header
    assert by_id["MHS00030"].severity == "file rejected"  # a rejected header rejects the file
    assert by_id["MHS00030"].consequence == "Record rejected"  # as NHS England spells it
    assert by_id["MHS10130"].severity == "warning"  # discharge after RP end plus 24 hours
    assert all(r.blocks == (r.severity == "file rejected") for r in catalogue.rules)


def test_committed_suites_match_the_catalogue(catalogue):
    rendered = render_suites(catalogue, _ctx("duckdb"))
    committed = {p.stem: json.loads(p.read_text()) for p in EXPORT_DIR.glob("*.json")}
    assert set(committed) == set(rendered)
    for name, doc in rendered.items():
        assert json.loads(json.dumps(doc, sort_keys=True, default=str)) == committed[name], (
            f"{name}: expectations/suites is stale; run scripts/export_gx_suites.py"
        )


def test_sql_rule_expectations_query_the_gx_batch_and_build_silently(capsys):
    """Every SQL-only rule's GX query runs over ``{batch}`` (the validated table), so GX does
    not print "unexpected_rows_query should contain the {batch} parameter" once per rule (it
    filled the quality_gate task log with about 1,400 such lines)."""
    catalogue = load_catalogue()
    rendered = render_suites(catalogue, _ctx("duckdb"))
    queries = [
        e["kwargs"]["unexpected_rows_query"]
        for doc in rendered.values()
        for e in doc["expectations"]
        if "unexpected_rows_query" in e.get("kwargs", {})
    ]
    assert queries, "no SQL-only rules rendered"
    assert all(" FROM (SELECT * FROM {batch}) t WHERE " in q for q in queries)
    out = capsys.readouterr()
    assert "should contain the {batch}" not in out.out + out.err


#: MHS204 rules of the v6.0 file that cannot be judged before upload, with why (mhsds_v6_rules.yml).
MHS204_NOT_EVALUATED = {}


def test_every_locally_judged_mhs204_rule_is_in_the_catalogue(catalogue):
    """MHS204IndirectActivity carries every rule of its v6.0 file rows (MHS20424 against the ODS
    seed, MHS20421 against MHS901StaffDetails, both built since #13), and its orphans are
    group-rejected against MHS101."""
    nhs = {code for code, r in load_nhs_rules().items() if r.table == "MHS204IndirectActivity"}
    ours = {r.id for r in catalogue.for_table("MHS204IndirectActivity") if r.nhs}
    assert len(nhs) == 24
    assert ours == nhs - set(MHS204_NOT_EVALUATED)
    # its one local rule: an EPR cell that could not be read at extract rejects the row
    local = {r.id for r in catalogue.for_table("MHS204IndirectActivity") if not r.nhs}
    assert local == {"LOCAL_MHS204_SOURCE_CELL"}
    group = catalogue.rule("MHS20403")
    assert group.severity == "group rejected" and group.check["parent"] == "mhs101_referral"
    order = catalogue.cascade_order
    assert order.index("MHS101Referral") < order.index("MHS204IndirectActivity")
    # the Format rule of every published MHS204 column, and each kind of v6 rule represented
    contract = next(c for c in load_contracts(load_settings().dbt_project_dir).values()
                    if c.idb_table == "MHS204IndirectActivity")  # fmt: skip
    formats = {r.column for r in catalogue.for_table("MHS204IndirectActivity") if r.type == "format"}
    assert formats == set(contract.column_names)
    kinds = {load_nhs_rules()[r].kind for r in ours}
    assert kinds == {"Blank", "Format", "National Code", "AV"}


@pytest.mark.parametrize("dialect", ["duckdb", "postgresql"])
def test_finding_scheme_rule_uses_the_finding_scheme_codes(catalogue, dialect):
    """MHS20430 reads FINDING SCHEME IN USE (01 ICD-10, 04 SNOMED CT), not the diagnosis
    scheme codes (02 / 06) that the MHS604/605 rules use."""
    sql = fail_predicate(catalogue.rule("MHS20430"), _ctx(dialect))
    assert "\"FindSchemeInUse\" AS VARCHAR) = '01'" in sql and "= '04'" in sql
    assert "'02'" not in sql and "'06'" not in sql
    primary = fail_predicate(catalogue.rule("MHS60414"), _ctx(dialect))
    assert "= '02'" in primary and "= '06'" in primary
