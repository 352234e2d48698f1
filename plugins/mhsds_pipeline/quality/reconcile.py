"""Reconciliation as an invariant: every extracted row is published or quarantined.

For each EPR table the extract wrote for a period (``_extract.json``), the rows that reach the
MHSDS tables it feeds must all be accounted for::

    extracted = published + quarantined

where *published* are the rows of the submission (the gate's ``dq.<table>__submit`` views, then
the Parquet files written) and *quarantined* the rows rejected with an MHSDS rule id (each
rejected row counted once, however many rules it broke). A row that is extracted and then
vanishes (a join that drops it, a filter in a model, a mart edited behind the pipeline's back)
breaks the equation, and the gate fails the run as critical (``LOCAL_RECONCILIATION``: SDCS
cannot know what the provider extracted, so v6 has no rule for it; a provider's own
completeness check, the local rule the MHSDS guidance asks for). The publisher checks the same
equation again on the files it actually wrote and records it in ``manifest.json``.

The mapping from EPR table to MHSDS tables is stated once, in the source contract
(:data:`mhsds_pipeline.source.mapping.SOURCES`, imported here as :data:`SOURCES`); ``wards`` is
a lookup (its attributes are carried into MHS502 rows), reported with its count but outside the
equation, and MHS000Header has no EPR source.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import sqlalchemy as sa

from mhsds_pipeline.quality.results import CheckResult
from mhsds_pipeline.quality.rules import ROW_REJECTING, SqlContext, existing_tables, in_list, lit
from mhsds_pipeline.source.mapping import LOOKUPS, SOURCES

RULE_ID = "LOCAL_RECONCILIATION"


@dataclass
class TableCount:
    """One MHSDS table's share of an EPR table's rows."""

    built: int
    published: int
    quarantined: int


@dataclass
class SourceReconciliation:
    """``extracted = published + quarantined`` for one EPR table."""

    epr_table: str
    extracted: int
    published: int
    quarantined: int
    mhsds_tables: dict[str, TableCount] = field(default_factory=dict)  # dbt model -> counts

    @property
    def balanced(self) -> bool:
        return self.extracted == self.published + self.quarantined

    @property
    def missing(self) -> int:
        """Rows extracted but neither published nor quarantined (negative: rows appeared)."""
        return self.extracted - self.published - self.quarantined


@dataclass
class Reconciliation:
    """The reconciliation of one period (``gate.json`` and ``manifest.json`` carry it)."""

    period: str
    sources: dict[str, SourceReconciliation]
    lookups: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return all(s.balanced for s in self.sources.values())

    def broken(self) -> list[SourceReconciliation]:
        return [s for s in self.sources.values() if not s.balanced]

    def to_json(self) -> dict:
        return {
            "period": self.period,
            "invariant": "extracted = published + quarantined",
            "status": "balanced" if self.balanced else "broken",
            "sources": {
                name: {**asdict(s), "balanced": s.balanced, "missing": s.missing}
                for name, s in self.sources.items()
            },
            "lookups": dict(self.lookups),
        }

    @classmethod
    def from_json(cls, data: dict) -> Reconciliation:
        sources = {}
        for name, s in data["sources"].items():
            sources[name] = SourceReconciliation(
                epr_table=s["epr_table"],
                extracted=int(s["extracted"]),
                published=int(s["published"]),
                quarantined=int(s["quarantined"]),
                mhsds_tables={m: TableCount(**c) for m, c in s.get("mhsds_tables", {}).items()},
            )
        return cls(period=data["period"], sources=sources, lookups=dict(data.get("lookups", {})))

    def with_outputs(self, published: dict[str, int], quarantined: dict[str, int]) -> Reconciliation:
        """The same extract counts against what was written (dbt model -> rows in the
        submission file / distinct rows in the quarantine file)."""
        sources = {}
        for name, s in self.sources.items():
            tables = {
                m: TableCount(built=c.built, published=published.get(m, 0), quarantined=quarantined.get(m, 0))
                for m, c in s.mhsds_tables.items()
            }
            sources[name] = SourceReconciliation(
                epr_table=name,
                extracted=s.extracted,
                published=sum(t.published for t in tables.values()),
                quarantined=sum(t.quarantined for t in tables.values()),
                mhsds_tables=tables,
            )
        return Reconciliation(self.period, sources, dict(self.lookups))

    def describe(self, source: SourceReconciliation, idb: dict[str, str] | None = None) -> str:
        """One line naming period, EPR and MHSDS tables and the counts (never a row key)."""
        names = ", ".join((idb or {}).get(m, m) for m in source.mhsds_tables)
        lost = source.missing
        what = (
            f"{lost} row(s) lost between extract and publish"
            if lost > 0
            else f"{-lost} row(s) more than were extracted"
        )
        return (
            f"{self.period} EPR {source.epr_table} -> {names}: {source.extracted} extracted, "
            f"{source.published} published + {source.quarantined} quarantined = "
            f"{source.published + source.quarantined}; {what}"
        )

    def checks(self, idb: dict[str, str] | None = None) -> list[CheckResult]:
        """One critical dq_results row per EPR table (failed when the equation does not hold)."""
        out = []
        for s in self.sources.values():
            out.append(
                CheckResult(
                    check_id=RULE_ID,
                    source="file",
                    suite="reconciliation",
                    table_name=s.epr_table,
                    dimension="completeness",
                    severity="file rejected",
                    status="passed" if s.balanced else "failed",
                    numerator=abs(s.missing),
                    denominator=s.extracted,
                    threshold=0.0,
                    description=(
                        f"Every extracted {s.epr_table} row is published or quarantined with a rule id "
                        "(extracted = published + quarantined)"
                        if s.balanced
                        else self.describe(s, idb)
                    ),
                )
            )
        return out


def _count(conn, sql: str) -> int:
    return int(conn.execute(sa.text(sql)).scalar_one())


def reconcile(
    engine: sa.Engine,
    ctx: SqlContext,
    period: str,
    extracted: dict[str, int],
    failures_table: str = "dq.rule_failures",
    submit_relation=None,
) -> Reconciliation:
    """Count, in the warehouse, where each extracted row went after the rule engine ran.

    ``extracted``: EPR table -> rows in the landing zone (``_extract.json``). ``submit_relation``
    maps a model to its submit view (the engine's ``dq.<model>__submit``). A rejected row is
    one with at least one record/group rejection in ``failures_table``, counted independently
    of the submit view, so ``published + quarantined`` is a real sum over the mart.
    """
    with engine.connect() as conn:
        present = existing_tables(conn, ctx.schema)
        sources: dict[str, SourceReconciliation] = {}
        for epr_table, models in SOURCES.items():
            tables: dict[str, TableCount] = {}
            for model in models:
                if model not in present:
                    tables[model] = TableCount(0, 0, 0)
                    continue
                rejected = (
                    f"EXISTS (SELECT 1 FROM {failures_table} f WHERE f.table_name = {lit(model)} "
                    f"AND f.severity IN {in_list(list(ROW_REJECTING))} "
                    f"AND f.row_key = {ctx.key_expr(model)})"
                )
                built = _count(conn, f"SELECT COUNT(*) FROM {ctx.table(model)} t")
                quarantined = _count(conn, f"SELECT COUNT(*) FROM {ctx.table(model)} t WHERE {rejected}")
                submit = submit_relation(model) if submit_relation else f"{ctx.table(model)}"
                published = _count(conn, f"SELECT COUNT(*) FROM {submit} s")
                tables[model] = TableCount(built, published, quarantined)
            sources[epr_table] = SourceReconciliation(
                epr_table=epr_table,
                extracted=int(extracted.get(epr_table, 0)),
                published=sum(t.published for t in tables.values()),
                quarantined=sum(t.quarantined for t in tables.values()),
                mhsds_tables=tables,
            )
    lookups = {t: int(extracted.get(t, 0)) for t in LOOKUPS}
    return Reconciliation(period, sources, lookups)


def distinct_quarantined_rows(table: pa.Table, rule_column: str = "_rule_id") -> int:
    """Rejected rows in a quarantine file, each once: the file has one row per (row, rule), so
    a row body seen n times under every rule it broke is n rows (exact duplicates stay apart)."""
    if table.num_rows == 0:
        return 0
    body_cols = [c for c in table.column_names if not c.startswith("_")]
    per_body: dict[tuple, Counter] = {}
    bodies = table.select(body_cols).to_pylist()
    rules = table.column(rule_column).to_pylist()
    for body, rule in zip(bodies, rules, strict=True):
        key = tuple(str(body[c]) for c in body_cols)
        per_body.setdefault(key, Counter())[rule] += 1
    return sum(max(c.values()) for c in per_body.values())


def gate_reconciliation(
    settings, period: str, engine: sa.Engine, ctx: SqlContext
) -> tuple[Reconciliation | None, list[CheckResult]]:
    """The quality gate's reconciliation: extract counts from the landing zone's record, the rest
    from the warehouse after the rule engine. Without an extract record nothing can be
    reconciled, which is itself critical (the run cannot show that nothing was lost)."""
    from mhsds_pipeline.contracts import load_contracts
    from mhsds_pipeline.extract import LandingError, read_extract_result
    from mhsds_pipeline.quality.engine import FAILURES, submit_view

    try:
        extracted = read_extract_result(settings.landing_dir(period)).row_counts
    except LandingError as exc:
        return None, [
            CheckResult(
                check_id=RULE_ID,
                source="file",
                suite="reconciliation",
                dimension="completeness",
                severity="file rejected",
                status="error",
                description=f"Cannot reconcile {period}: {exc}",
            )
        ]
    recon = reconcile(engine, ctx, period, extracted, failures_table=FAILURES, submit_relation=submit_view)
    idb = {m: c.idb_table for m, c in load_contracts(settings.dbt_project_dir).items()}
    return recon, recon.checks(idb)
