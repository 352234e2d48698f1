"""Great Expectations suites built from the rules catalogue, validated by SQL pushdown.

Two layers, suites named ``<layer>__<asset>`` (STYLE.md):

* ``raw__<epr table>``: the landed extract in ``raw_epr`` is structurally usable (core tables
  not empty, keys present). Runs before dbt.
* ``marts__<mhsds table>``: every rule of ``expectations/rules/mhsds_v6_rules.yml`` as one
  expectation (``meta``: rule id, consequence, severity, dimension). Rules with a natural GX
  expectation use it (not null, in set, unique, the custom NHS number / SCTID / value set
  expectations); the rest (dates in the period, date order, referential integrity, header
  rules) are ``UnexpectedRowsExpectation``s over the same SQL the rule engine runs.

Both run against the warehouse through GX's SQL data source (DuckDB via duckdb_engine, or
PostgreSQL), so GX only fetches aggregates. ``result_format`` is SUMMARY with no unexpected
values, and the ``UnexpectedRowsExpectation`` queries select a constant, so neither the
validation results nor Data Docs carry a record key or identifier.

Each marts expectation's unexpected count is cross-checked against the rule engine's count for
the same rule: a disagreement is reported as status ``error`` rather than silently trusted.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from mhsds_pipeline.quality.results import CheckResult
from mhsds_pipeline.quality.rules import (
    Catalogue,
    Rule,
    SqlContext,
    existing_tables,
    failing_rows_sql,
    lit,
    q,
    seed_codes,
    tool_ranges,
)

log = logging.getLogger(__name__)

DOCS_SITE = "mhsds_ig"
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0, "include_unexpected_rows": False}

#: raw_epr tables: key column, and whether the month cannot be built without rows in it.
RAW_TABLES: dict[str, tuple[str, bool]] = {
    "patients": ("patient_id", True),
    "referrals": ("referral_id", True),
    "appointments": ("appointment_id", True),
    "interventions": ("intervention_id", False),
    "indirect_activities": ("indirect_activity_id", False),
    "assessments": ("assessment_id", False),
    "diagnoses": ("diagnosis_id", False),
    "admissions": ("admission_id", False),
    "ward_movements": ("ward_stay_id", False),
    "gp_registrations": ("patient_id", True),
    "referral_teams": ("referral_id", False),
    "teams": ("team_id", True),
    "wards": ("ward_code", False),
}


@dataclass
class GxOutcome:
    checks: list[CheckResult]  # raw suites: their own dq_results rows
    success: bool
    seconds: float
    data_docs_index: Path | None
    counts: dict[str, int | None] = field(default_factory=dict)  # marts: rule id -> failing rows
    errors: dict[str, str] = field(default_factory=dict)  # marts: rule id -> why GX could not count


def _meta(rule: Rule) -> dict:
    return {
        "rule_id": rule.id,
        "consequence": rule.consequence,
        "severity": rule.severity,
        "dimension": rule.dimension,
        "table": rule.table,
        "column": rule.column,
    }


def _description(rule: Rule) -> str:
    """Data Docs' line for the rule: its code and NHS England's message, without the message's
    ``Item=<Item>`` value parts (Data Docs counts rows; it shows no values, and a browser would
    take ``<Item>`` for an HTML tag)."""
    return f"{rule.id}: {rule.text}"


def expectation_for(rule: Rule, ctx: SqlContext):
    """The GX expectation that checks ``rule`` (same verdict as the rule engine's SQL)."""
    import great_expectations.expectations as gxe

    from mhsds_pipeline.quality import expectations as mx  # registers the custom expectations

    c, col, kind = rule.check, rule.column, rule.type
    common = {"meta": _meta(rule), "description": _description(rule)}
    if kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=col, **common)
    if kind == "code_list":
        return gxe.ExpectColumnValuesToBeInSet(
            column=col,
            value_set=seed_codes(c["seed"], c.get("seed_column", "code"), seeds_dir=ctx.seeds_dir),
            **common,
        )
    if kind == "code_list_default":
        codes = seed_codes(c["seed"], c.get("seed_column", "code"), ("default",), ctx.seeds_dir)
        return gxe.ExpectColumnValuesToNotBeInSet(column=col, value_set=codes, **common)
    if kind == "nhs_number":
        return mx.ExpectColumnValuesToBeValidNhsNumber(column=col, **common)
    if kind == "sctid":
        return mx.ExpectColumnValuesToBeValidSctid(
            column=col, allowed_partitions=list(c.get("partitions", ["00", "10"])), **common
        )
    if kind == "value_set" and not c.get("require_valid_sctid", True):
        return mx.ExpectColumnValuesToBeInSnomedValueSet(
            column=col,
            value_set=seed_codes(c["seed"], c.get("seed_column", "code"), seeds_dir=ctx.seeds_dir),
            value_set_name=c["seed"],
            **common,
        )
    if kind == "score_range":  # unknown tools pass here too: the tool rule reports them
        return mx.ExpectColumnPairValuesScoreWithinToolRange(
            column_A=c["tool_column"],
            column_B=col,
            ranges={k: list(v) for k, v in tool_ranges(c["seed"], ctx.seeds_dir).items()},
            **common,
        )
    if kind == "unique" and len(c["columns"]) == 1 and not c.get("where"):
        return gxe.ExpectColumnValuesToBeUnique(column=c["columns"][0], **common)
    if kind == "unique" and not c.get("where"):
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(c["columns"]), **common)
    if kind == "row_count":
        return gxe.ExpectTableRowCountToBeBetween(min_value=c.get("min"), max_value=c.get("max"), **common)
    # Everything else: the rule engine's own SQL, selecting a constant (no keys leave the warehouse),
    # over GX's {batch} (the validated table) rather than the table's name, so the query honours
    # the batch and GX has no reason to warn (it printed one line per expectation built).
    # GX str.format()s the query to fill {batch}: escape the braces of regex quantifiers.
    table_sql = failing_rows_sql(rule, ctx, select=f"{lit(rule.id)} AS rule_id")
    own_table = f" FROM {ctx.table(rule.model)} t WHERE "
    head, sep, predicate = table_sql.partition(own_table)
    if not sep:  # pragma: no cover - failing_rows_sql always selects from the rule's table
        raise ValueError(f"rule {rule.id}: cannot place the GX batch in {table_sql!r}")
    # GX fills {batch} with an aliased derived table ("(SELECT ...) AS subselect"): re-alias it
    # as t, the alias the rule predicates use (valid on DuckDB and PostgreSQL).
    sql = _escape_braces(head) + " FROM (SELECT * FROM {batch}) t WHERE " + _escape_braces(predicate)
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=sql, **common)


def _escape_braces(sql: str) -> str:
    return sql.replace("{", "{{").replace("}", "}}")


def quiet_gx_logging() -> None:
    """GX logs its own bookkeeping at INFO: a line per expectation for every default keyword it
    looks up, a line per function its docs decorator registers (about 700 lines per quality
    gate). None of it is a result (results go to dq_results and Data Docs), so only its
    warnings and errors reach the task log, which then reads as steps and results."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


#: The metric that fetches an ``UnexpectedRowsExpectation``'s failing rows (not only their count).
ROWS_METRIC = "unexpected_rows_query.table"
_COUNT_ONLY_MARKER = "_mhsds_count_only"


def _result_format(deps) -> tuple[str | None, int | None]:
    fmt = deps.result_format
    if isinstance(fmt, dict):
        return fmt.get("result_format"), fmt.get("partial_unexpected_count")
    return fmt, None


def count_only_results() -> bool:
    """Let GX resolve only the metrics the gate's result format shows: counts, not samples of rows.

    GX 1.24 resolves, for each ``UnexpectedRowsExpectation`` (the 843 rules checked with the rule
    engine's SQL), the failing rows (``unexpected_rows_query.table``) as well as their count, so
    each predicate ran twice, though only a COMPLETE result shows the rows; and for each map
    expectation a sample of unexpected values even when ``partial_unexpected_count`` is 0 (one
    ``LIMIT 0`` query each). Neither reaches a result or Data Docs under :data:`RESULT_FORMAT`:
    dropping them took ``validate_marts`` from 17.7 s to 14.1 s at scale 1 (paired runs; README,
    "Benchmark"), same counts, same Data Docs pages; a map result no longer carries an empty
    ``partial_unexpected_list``. Idempotent and process-wide, like
    :mod:`.gx_compat`; any other result format resolves what it did. True when it installed."""
    from great_expectations.expectations import expectation as gxx
    from great_expectations.expectations.core.unexpected_rows_expectation import (
        UnexpectedRowsExpectation as Rows,
    )

    if getattr(Rows.get_validation_dependencies, _COUNT_ONLY_MARKER, False):
        return False

    def without(cls, unused):
        dependencies = cls.get_validation_dependencies

        def get_validation_dependencies(self, execution_engine=None, runtime_configuration=None, **kwargs):
            deps = dependencies(
                self, execution_engine=execution_engine, runtime_configuration=runtime_configuration, **kwargs
            )
            name = unused(self, *_result_format(deps))
            if name and deps.get_metric_configuration(name) is not None:
                deps.remove_metric_configuration(name)
            return deps

        setattr(get_validation_dependencies, _COUNT_ONLY_MARKER, True)
        cls.get_validation_dependencies = get_validation_dependencies

    for cls in (gxx.ColumnMapExpectation, gxx.ColumnPairMapExpectation, gxx.MulticolumnMapExpectation):
        # their _validate reads the sample with metrics.get(): a missing one is an empty sample
        without(
            cls,
            lambda e, fmt, n: (
                f"{e.map_metric}.unexpected_values" if fmt in ("BASIC", "SUMMARY") and n == 0 else None
            ),
        )
    without(Rows, lambda e, fmt, n: ROWS_METRIC if fmt != "COMPLETE" else None)
    validate = Rows._validate

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        return validate(self, {ROWS_METRIC: None, **metrics}, runtime_configuration, execution_engine)

    Rows._validate = _validate
    return True


def _context(docs_dir: Path | None):
    quiet_gx_logging()
    import great_expectations as gx

    from mhsds_pipeline.quality.gx_compat import patch_sqlalchemy_execution_engine

    patch_sqlalchemy_execution_engine()
    count_only_results()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        if docs_dir.exists():
            shutil.rmtree(docs_dir)
        docs_dir.mkdir(parents=True)
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                # no GX tutorial buttons: their sticky footer covered the results table's rows
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def _datasource(context, url: str):
    if url.startswith("postgresql"):
        return context.data_sources.add_postgres(name="warehouse", connection_string=url)
    return context.data_sources.add_sql(name="warehouse", connection_string=url)


def _run(
    context,
    datasource,
    schema: str,
    suites: dict[str, tuple[str, list]],
    checkpoint_name: str,
    docs: bool,
    run_name: str | None = None,
):
    """Validate ``suites`` (suite name -> (warehouse relation, expectations)) in one checkpoint.

    ``run_name`` (the Airflow run id) names the run in the stored results and Data Docs (GX's
    default is ``__none__``); the run time stays GX's, the moment of validation."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    definitions = []
    for asset_name, (relation, expectations) in suites.items():
        # A query asset, not a table asset: GX 1.24 reflects a table asset's columns without its
        # schema on DuckDB ("Table with name ... does not exist") and every map expectation errors.
        asset = datasource.add_query_asset(name=asset_name, query=f"SELECT * FROM {q(schema)}.{q(relation)}")
        batch = asset.add_batch_definition_whole_table(f"{asset_name}__whole_table")
        # The suite is added whole: adding expectations one by one to a stored suite re-serialises
        # the suite on every add (quadratic; 17 of 54 s for the 1,147 expectations of 61 suites).
        suite = context.suites.add(gx.ExpectationSuite(name=asset_name, expectations=list(expectations)))
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(name=asset_name, data=batch, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=checkpoint_name,
            validation_definitions=definitions,
            actions=[],
            result_format=RESULT_FORMAT,
        )
    )
    try:
        result = checkpoint.run(run_id=RunIdentifier(run_name=run_name) if run_name else None)
        if docs:
            # Data Docs built once, from every result the run stored: GX's UpdateDataDocsAction
            # rebuilds the site and its index once per validation result (61 times a month,
            # 70 of 105 s), the same pages in the end.
            context.build_data_docs(site_names=[DOCS_SITE])
            _make_docs_offline(context)
        return result
    finally:
        _release(datasource)


def _make_docs_offline(context) -> None:
    """Point the built site at vendored copies of its CDN files (see quality/data_docs.py)."""
    from mhsds_pipeline.quality.data_docs import make_offline

    site = context.variables.data_docs_sites[DOCS_SITE]
    pages = make_offline(Path(site["store_backend"]["base_directory"]))
    log.info("Data Docs: %d pages rewritten to load only vendored files (no network)", pages)


def _release(datasource) -> None:
    """Close GX's connections: DuckDB lets only one configuration hold the file per process,
    and the next task in the same process (dbt, the publisher) must be able to open it."""
    import gc

    for engine in (getattr(datasource, "_engine", None), getattr(datasource, "_execution_engine", None)):
        engine = getattr(engine, "engine", engine)  # the execution engine wraps a SQLAlchemy engine
        if engine is not None and hasattr(engine, "dispose"):
            try:
                engine.dispose()
            except Exception:  # noqa: BLE001 - best effort; never hide the validation result
                log.debug("could not dispose a GX engine", exc_info=True)
    gc.collect()


def _raised(er) -> str | None:
    """The exception message when GX could not evaluate an expectation (else None)."""
    info = er.exception_info or {}
    if info.get("raised_exception"):
        return info.get("exception_message") or "unknown error"
    for value in info.values():  # checkpoint results key exceptions by metric
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message") or "unknown error"
    return None


def _counts(result: dict) -> tuple[int | None, int | None]:
    """(unexpected, element count) from one expectation result's ``result`` dict."""
    res = result or {}
    if "unexpected_count" in res:
        return int(res["unexpected_count"] or 0), res.get("element_count")
    observed = res.get("observed_value")
    if isinstance(observed, int | float):
        return int(observed), None
    return None, None


def validate_marts(
    url: str,
    catalogue: Catalogue,
    ctx: SqlContext,
    table_rows: dict[str, int],
    docs_dir: Path | None,
    run_name: str | None = None,
) -> GxOutcome:
    """Run the ``marts__<IDB table>`` suites; GX's failing-row count per rule (see :func:`cross_check`)."""
    t0 = time.perf_counter()
    context = _context(docs_dir)
    datasource = _datasource(context, url)
    suites: dict[str, tuple[str, list]] = {}
    for table in catalogue.cascade_order:
        if table not in table_rows:  # not built: the file-level check reports it
            continue
        rules = catalogue.for_table(table)
        suites[f"marts__{table}"] = catalogue.model(table), [expectation_for(r, ctx) for r in rules]
    result = _run(context, datasource, ctx.schema, suites, "mhsds_marts", docs_dir is not None, run_name)
    rules_by_id = {r.id: r for r in catalogue.rules}
    counts: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for run in result.run_results.values():
        for er in run.results:
            rule = rules_by_id[(er.expectation_config.meta or {})["rule_id"]]
            unexpected, _ = _counts(er.result)
            if rule.table_level:  # row_count: GX's verdict, counted as the table's rows
                unexpected = table_rows.get(rule.table, 0) if er.success is not None else None
            error = _raised(er)
            if error or unexpected is None:
                errors[rule.id] = (error or "no count returned")[:300]
            counts[rule.id] = unexpected
    index = docs_dir / "index.html" if docs_dir is not None and (docs_dir / "index.html").exists() else None
    outcome = GxOutcome([], bool(result.success), round(time.perf_counter() - t0, 3), index, counts, errors)
    log.info(
        "GX marts suites: %d expectations by SQL pushdown, %d could not be evaluated, in %.1f s; Data Docs %s",
        len(counts),
        len(errors),
        outcome.seconds,
        index,
    )
    return outcome


def cross_check(rule_checks: list[CheckResult], gx: GxOutcome) -> list[CheckResult]:
    """Fold GX's count into each catalogue rule's one dq_results row.

    The rule engine's count (after the group-rejection cascade) stays the authoritative
    ``numerator``; GX's is ``count_gx``. A rule GX could not evaluate, or counted differently, is
    an ``error`` row naming both counts: a disagreement is reported, never silently trusted.
    """
    out = []
    for check in rule_checks:
        if check.source not in ("mhsds_rule", "local_rule") or check.status == "not_applicable":
            out.append(check)
            continue
        gx_count = gx.counts.get(check.check_id)
        check.count_gx = gx_count
        error = gx.errors.get(check.check_id)
        if check.check_id not in gx.counts:
            error = "GX did not run the rule"
        if error:
            check.engines_agree = False
            check.status = "error"
            check.description = f"{check.description} [GX could not evaluate it: {error}]"
        elif gx_count != check.count_rule_engine:
            check.engines_agree = False
            check.status = "error"
            check.description = f"{check.description} [GX counted {gx_count} failing rows, the rule engine {check.count_rule_engine}]"
        else:
            check.engines_agree = True
        out.append(check)
    return out


def validate_raw(url: str, schema: str = "raw_epr") -> GxOutcome:
    """``raw__*`` suites: the landed extract can be built from (counts only, no docs)."""
    import great_expectations.expectations as gxe
    import sqlalchemy as sa

    t0 = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        present = existing_tables(conn, schema)
    engine.dispose()
    checks: list[CheckResult] = []
    suites: dict[str, list] = {}
    for table, (key, required) in RAW_TABLES.items():
        if table not in present:
            checks.append(
                CheckResult(
                    check_id="RAW_TABLE_PRESENT",
                    source="gx",
                    suite=f"raw__{table}",
                    table_name=table,
                    dimension="completeness",
                    severity="file rejected" if required else "warning",
                    status="failed",
                    description=f"raw_epr.{table} was not landed",
                )
            )
            continue
        sev = "file rejected" if required else "warning"
        suites[f"raw__{table}"] = (
            table,
            [
                gxe.ExpectTableRowCountToBeBetween(
                    min_value=1 if required else 0,
                    meta={"rule_id": "RAW_ROWS", "severity": sev, "dimension": "completeness"},
                    description=f"raw_epr.{table} has rows for the period"
                    if required
                    else f"raw_epr.{table} row count",
                ),
                gxe.ExpectColumnValuesToNotBeNull(
                    column=key,
                    meta={
                        "rule_id": "RAW_KEY_NOT_NULL",
                        "severity": "file rejected",
                        "dimension": "completeness",
                    },
                    description=f"raw_epr.{table}.{key} (the source key) is always present",
                ),
            ],
        )
    context = _context(None)
    datasource = _datasource(context, url)
    result = _run(context, datasource, schema, suites, "mhsds_raw", docs=False)
    for run in result.run_results.values():
        suite_name = run.suite_name
        for er in run.results:
            meta = er.expectation_config.meta or {}
            unexpected, total = _counts(er.result)
            error = _raised(er)
            checks.append(
                CheckResult(
                    check_id=meta["rule_id"],
                    source="gx",
                    suite=suite_name,
                    table_name=suite_name.split("__", 1)[1],
                    column_name=er.expectation_config.kwargs.get("column"),
                    dimension=meta.get("dimension"),
                    severity=meta["severity"],
                    status="error" if error else ("passed" if er.success else "failed"),
                    numerator=unexpected,
                    denominator=total,
                    description=er.expectation_config.description
                    + (f" (GX error: {error[:300]})" if error else ""),
                )
            )
    return GxOutcome(
        checks,
        all(c.status == "passed" or not c.blocks for c in checks),
        round(time.perf_counter() - t0, 3),
        None,
    )


__all__ = ["GxOutcome", "cross_check", "expectation_for", "validate_marts", "validate_raw", "q"]


#: Where the committed, reviewable rendering of the suites lives (see expectations/README.md).
EXPORT_DIR = Path(__file__).resolve().parents[3] / "expectations" / "suites"
EXPORT_PERIOD = "2026-10"


def render_suites(catalogue: Catalogue, ctx: SqlContext) -> dict[str, dict]:
    """Every ``marts__*`` suite as GX's JSON form (what a checkpoint run validates)."""
    import great_expectations as gx

    _context(None)  # GX needs an active context to build suites
    out = {}
    for table in catalogue.cascade_order:
        suite = gx.ExpectationSuite(
            name=f"marts__{table}",
            meta={"rules_catalogue_version": catalogue.version, "spec_version": catalogue.spec_version},
        )
        for rule in catalogue.for_table(table):
            suite.add_expectation(expectation_for(rule, ctx))
        doc = suite.to_json_dict()
        doc.pop("id", None)
        for e in doc.get("expectations", []):
            e.pop("id", None)
        out[suite.name] = doc
    return out


def export_suites(catalogue: Catalogue, ctx: SqlContext, out_dir: Path = EXPORT_DIR) -> list[Path]:
    """Write the suites (rendered for one period) for review and version control."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, doc in render_suites(catalogue, ctx).items():
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
        paths.append(path)
    return paths
