"""Extract one reporting period from the clinical source into the landing zone.

Each EPR table is read with a period-scoped query (the scope is pushed down to the source;
see docs/source_contract.md), streamed in bounded chunks with a server-side cursor and
written chunk by chunk as row groups of one Parquet file, so memory does not grow with the
table. Files are written under a temporary name and renamed when complete, and rows are
ordered by key so the same source gives the same bytes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Date, DateTime, Integer, Select, String, and_, create_engine, func, or_, select
from sqlalchemy.engine import Engine

from mhsds_pipeline.config import Settings, redact_url
from mhsds_pipeline.epr import schema as epr
from mhsds_pipeline.period import ReportingPeriod

log = logging.getLogger(__name__)

#: Key columns per EPR table: the extract orders by them (then by every other column) so the
#: landing files are deterministic even where the source holds duplicate keys.
EPR_KEYS: dict[str, tuple[str, ...]] = {
    "teams": ("team_id",),
    "wards": ("ward_code",),
    "patients": ("patient_id",),
    "gp_registrations": ("patient_id", "practice_code", "registered_on"),
    "referrals": ("referral_id",),
    "referral_teams": ("referral_id", "team_id"),
    "appointments": ("appointment_id",),
    "interventions": ("intervention_id",),
    "assessments": ("assessment_id",),
    "admissions": ("admission_id",),
    "ward_movements": ("ward_stay_id",),
    "diagnoses": ("diagnosis_id",),
}

#: Columns that tell us how fresh the source is (for DateTimeDatSetCreate).
_WATERMARK_COLUMNS = {"patients": "updated_at", "referrals": "updated_at", "appointments": "recorded_at"}


class ExtractError(RuntimeError):
    """The source could not be read for the period."""


def arrow_type(sa_type) -> pa.DataType:
    if isinstance(sa_type, DateTime):
        return pa.timestamp("us")
    if isinstance(sa_type, Date):
        return pa.date32()
    if isinstance(sa_type, Integer):
        return pa.int64()
    if isinstance(sa_type, String):
        return pa.string()
    raise TypeError(f"No Arrow mapping for SQL type {sa_type!r}")


def arrow_schema(table_name: str) -> pa.Schema:
    table = epr.metadata.tables[table_name]
    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=True) for c in table.columns])


def scoped_queries(period: ReportingPeriod) -> dict[str, Select]:
    """One SELECT per EPR table, restricted to what belongs to the period (source contract)."""
    start, end_excl = period.start_ts, period.end_exclusive_ts
    rp_start, rp_end = period.start, period.end

    r = epr.referrals
    referral_in_scope = and_(
        r.c.received_at < end_excl,
        or_(r.c.discharged_at.is_(None), r.c.discharged_at >= start),
        or_(r.c.rejected_on.is_(None), r.c.rejected_on >= rp_start),
    )
    scoped_referral_ids = select(r.c.referral_id).where(referral_in_scope)
    scoped_patient_ids = select(r.c.patient_id).where(referral_in_scope)

    a = epr.appointments
    appointment_in_scope = or_(
        and_(a.c.start_at >= start, a.c.start_at < end_excl),
        and_(a.c.recorded_at >= start, a.c.recorded_at < end_excl),
    )
    scoped_appointment_ids = select(a.c.appointment_id).where(appointment_in_scope)
    i = epr.interventions
    scoped_intervention_ids = select(i.c.intervention_id).where(
        i.c.appointment_id.in_(scoped_appointment_ids)
    )

    adm = epr.admissions
    admission_in_scope = and_(
        adm.c.referral_id.in_(scoped_referral_ids),
        adm.c.admitted_at < end_excl,
        or_(adm.c.discharged_at.is_(None), adm.c.discharged_at >= start),
    )
    g, rt, asm, wm, d = (
        epr.gp_registrations,
        epr.referral_teams,
        epr.assessments,
        epr.ward_movements,
        epr.diagnoses,
    )
    where = {
        "teams": None,
        "wards": None,
        "patients": epr.patients.c.patient_id.in_(scoped_patient_ids),
        "gp_registrations": and_(
            g.c.patient_id.in_(scoped_patient_ids),
            or_(g.c.registered_on.is_(None), g.c.registered_on <= rp_end),
            or_(g.c.deregistered_on.is_(None), g.c.deregistered_on >= rp_start),
        ),
        "referrals": referral_in_scope,
        "referral_teams": and_(
            rt.c.referral_id.in_(scoped_referral_ids),
            rt.c.assigned_on <= rp_end,
            or_(rt.c.closed_on.is_(None), rt.c.closed_on >= rp_start),
        ),
        "appointments": appointment_in_scope,
        "interventions": i.c.appointment_id.in_(scoped_appointment_ids),
        "assessments": or_(
            asm.c.intervention_id.in_(scoped_intervention_ids),
            and_(
                asm.c.intervention_id.is_(None),
                asm.c.referral_id.in_(scoped_referral_ids),
                asm.c.completed_at >= start,
                asm.c.completed_at < end_excl,
            ),
        ),
        "admissions": admission_in_scope,
        "ward_movements": and_(
            wm.c.admission_id.in_(select(adm.c.admission_id).where(admission_in_scope)),
            wm.c.start_at < end_excl,
            or_(wm.c.end_at.is_(None), wm.c.end_at >= start),
        ),
        # as at RP end: a diagnosis coded next month was not known in this one
        "diagnoses": and_(d.c.referral_id.in_(scoped_referral_ids), d.c.diagnosed_at < end_excl),
    }
    queries: dict[str, Select] = {}
    for name in epr.TABLE_NAMES:
        table = epr.metadata.tables[name]
        keys = EPR_KEYS[name]
        order = [table.c[k] for k in keys] + [c for c in table.columns if c.name not in keys]
        stmt = select(*table.columns)
        if where[name] is not None:
            stmt = stmt.where(where[name])
        queries[name] = stmt.order_by(*order)
    return queries


@dataclass
class TableExtract:
    table: str
    rows: int
    row_groups: int
    seconds: float
    path: str


@dataclass
class ExtractResult:
    period: str
    source: str
    landing_dir: str
    tables: dict[str, TableExtract]
    source_watermark: str | None
    seconds: float

    def to_json(self) -> dict:
        d = asdict(self)
        d["row_counts"] = {k: v.rows for k, v in self.tables.items()}
        return d


def _write_table(engine: Engine, name: str, stmt: Select, dest: Path, chunk_rows: int) -> TableExtract:
    schema = arrow_schema(name)
    tmp = dest.with_suffix(".parquet.tmp")
    t0 = time.perf_counter()
    rows = groups = 0
    writer = pq.ParquetWriter(tmp, schema, compression="zstd")
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
            for chunk in result.partitions(chunk_rows):
                columns = list(zip(*chunk, strict=True))
                batch = pa.record_batch(
                    [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
                    schema=schema,
                )
                writer.write_batch(batch, row_group_size=chunk_rows)
                rows += len(chunk)
                groups += 1
        if groups == 0:  # keep an empty file with the right schema
            writer.write_table(schema.empty_table())
    except Exception:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(dest)
    return TableExtract(name, rows, groups, round(time.perf_counter() - t0, 3), str(dest))


def source_watermark(engine: Engine, period: ReportingPeriod) -> datetime | None:
    """Latest change seen in the source up to the end of the period (deterministic per source)."""
    latest: datetime | None = None
    with engine.connect() as conn:
        for table_name, column in _WATERMARK_COLUMNS.items():
            col = epr.metadata.tables[table_name].c[column]
            value = conn.execute(select(func.max(col)).where(col < period.end_exclusive_ts)).scalar()
            if isinstance(value, str):  # SQLite aggregate returns text
                value = datetime.fromisoformat(value)
            if value is not None and (latest is None or value > latest):
                latest = value
    return latest


def extract_period(settings: Settings, period: ReportingPeriod) -> ExtractResult:
    """Extract every EPR table for ``period`` into ``data/landing/<period>/``."""
    landing = settings.landing_dir(str(period))
    landing.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.source_url)
    t0 = time.perf_counter()
    tables: dict[str, TableExtract] = {}
    try:
        with engine.connect() as conn:  # fail fast with a clear message when the source is down
            missing = [t for t in epr.TABLE_NAMES if not engine.dialect.has_table(conn, t)]
        if missing:
            raise ExtractError(
                f"Clinical source {redact_url(settings.source_url)} has no table(s) {', '.join(missing)}; "
                "build the synthetic source with `mhsds generate` or point MHSDS_SOURCE_URL at the EPR."
            )
        for name, stmt in scoped_queries(period).items():
            tables[name] = _write_table(
                engine, name, stmt, landing / f"{name}.parquet", settings.extract_chunk_rows
            )
            log.info("extracted %s for %s: %d rows", name, period, tables[name].rows)
        watermark = source_watermark(engine, period)
    finally:
        engine.dispose()
    result = ExtractResult(
        period=str(period),
        source=redact_url(settings.source_url),
        landing_dir=str(landing),
        tables=tables,
        source_watermark=watermark.isoformat(sep=" ") if watermark else None,
        seconds=round(time.perf_counter() - t0, 3),
    )
    (landing / "_extract.json").write_text(json.dumps(result.to_json(), indent=2, sort_keys=True))
    return result
