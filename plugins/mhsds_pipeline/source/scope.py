"""Period scoping: which rows of each EPR table belong to a reporting period.

Part of the source contract (:mod:`mhsds_pipeline.source`), beside the schema it filters. The
rules are tabled in docs/source_contract.md ("Extract scope"); :func:`period_filters` states
them as SQL conditions on the tables of :mod:`mhsds_pipeline.source.schema`, and
:func:`scoped_queries` turns them into the one SELECT per table that the extract
(:mod:`mhsds_pipeline.extract`) pushes down to the source, ordered by the table's
:data:`~mhsds_pipeline.source.schema.EPR_KEYS` and then every other column so the same source
gives the same rows in the same order. A trust whose EPR records a period differently edits the
conditions here.

In short: reference tables (``teams``, ``wards``) land whole; referrals open at some time in the
period, with their patients and GP registrations; contacts and indirect activities dated *or*
recorded in it, with the contacts' interventions and those interventions' assessments; and rows that hang off a referral or
spell (referral teams, spells, ward stays, referral-level assessments, diagnoses) by their own
dates, whatever their parent, so an orphan lands and the quality gate rejects it with its rule
rather than it vanishing unseen.

The synthetic generator computes the same scope again, independently, in numpy
(``mhsds_pipeline.synthetic.scope``) to write ``expected_keys.parquet``; the two must never share
code (this module does not import it, nor it this one), so the tests can hold one against the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, DateTime, Select, and_, or_, select

from mhsds_pipeline.source import schema as epr

if TYPE_CHECKING:
    from mhsds_pipeline.period import ReportingPeriod

#: Columns that tell how fresh the source is (the latest of them before the period ends is the
#: extract's watermark, which becomes DateTimeDatSetCreate).
WATERMARK_COLUMNS: dict[str, str] = {
    "patients": "updated_at",
    "referrals": "updated_at",
    "appointments": "recorded_at",
}


def period_filters(period: ReportingPeriod) -> dict[str, ColumnElement[bool] | None]:
    """EPR table -> the condition its rows meet to belong to ``period`` (``None``: every row)."""
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
    # Indirect activities like contacts: dated or keyed in the period, whatever their referral
    # (an orphan lands and is rejected with MHS20403).
    ia = epr.indirect_activities
    indirect_in_scope = or_(
        and_(ia.c.start_at >= start, ia.c.start_at < end_excl),
        and_(ia.c.recorded_at >= start, ia.c.recorded_at < end_excl),
    )

    # Inpatient and referral-level rows belong to the period by their own dates, not through
    # their referral: an orphan (referral or spell missing, or not open in the period) lands
    # too, so the quality gate rejects it with its rule id instead of it vanishing unseen.
    adm = epr.admissions
    admission_in_scope = and_(
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
    filters: dict[str, ColumnElement[bool] | None] = {
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
            rt.c.assigned_on <= rp_end,
            or_(rt.c.closed_on.is_(None), rt.c.closed_on >= rp_start),
        ),
        "appointments": appointment_in_scope,
        "interventions": i.c.appointment_id.in_(scoped_appointment_ids),
        "indirect_activities": indirect_in_scope,
        "assessments": or_(
            asm.c.intervention_id.in_(scoped_intervention_ids),
            and_(
                asm.c.intervention_id.is_(None),
                asm.c.completed_at >= start,
                asm.c.completed_at < end_excl,
            ),
        ),
        "admissions": admission_in_scope,
        "ward_movements": and_(
            wm.c.start_at < end_excl,
            or_(wm.c.end_at.is_(None), wm.c.end_at >= start),
        ),
        # as at RP end: a diagnosis coded next month was not known in this one; one coded in
        # the period belongs to it even when its referral does not (an orphan, rejected later)
        "diagnoses": or_(
            and_(d.c.referral_id.in_(scoped_referral_ids), d.c.diagnosed_at < end_excl),
            and_(d.c.diagnosed_at >= start, d.c.diagnosed_at < end_excl),
        ),
    }
    filters.update(_generated_filters(period, filters))
    return filters


#: For a generated table whose scope follows its parent: the hand-built EPR table and column
#: holding the parent's identifier (the IDB join column).
_HAND_BUILT_PARENTS: dict[str, tuple[str, str]] = {
    "LocalPatientID": ("patients", "patient_id"),
    "ServiceRequestID": ("referrals", "referral_id"),
    "CareContactID": ("appointments", "appointment_id"),
    "CareActID": ("interventions", "intervention_id"),
    "HospProvSpellID": ("admissions", "admission_id"),
    "WardStayID": ("ward_movements", "ward_stay_id"),
    "WardCode": ("ward_movements", "ward_code"),
}


def _generated_filters(
    period: ReportingPeriod, hand_built: dict[str, ColumnElement[bool] | None]
) -> dict[str, ColumnElement[bool] | None]:
    """The tables built from NHS England's rules file (source/schema_v6.py), by the scope their
    contract declares (``meta.scope``; scripts/v6_tables.py derives it from the rules):

    * period: the row's interval overlaps the period (start on or before its end; end empty or
      on or after its start); a row with no start date belongs only to the month it was keyed;
    * event: the row's date is in the period;
    * parent: the parent row belongs to the period (a patient's indicators, a plan's agreements);
    * all: every row (reference tables).

    Any row keyed in the period (``recorded_at``) belongs to it too, whatever its dates, so a
    late-keyed or mis-dated row lands and the quality gate rejects it with its rule.
    """
    from mhsds_pipeline.source.schema_v6 import RECORDED_AT, generated_contracts, snake

    start, end_excl = period.start_ts, period.end_exclusive_ts
    contracts = {m["config"]["meta"]["idb_table"]: m for m in generated_contracts()}
    out: dict[str, ColumnElement[bool] | None] = {}

    def condition(idb_table: str) -> ColumnElement[bool] | None:
        meta = contracts[idb_table]["config"]["meta"]
        name = meta["epr_table"]
        if name in out:
            return out[name]
        t = epr.metadata.tables[name]
        scope = meta["scope"]
        keyed = and_(t.c[RECORDED_AT] >= start, t.c[RECORDED_AT] < end_excl)
        kind = scope["kind"]
        if kind == "all":
            cond = None
        elif kind == "period":
            s, e = t.c[snake(scope["start"])], t.c[snake(scope["end"])]
            cond = or_(
                and_(
                    _not_after_period(s, period),  # no start date: only the month it was keyed
                    or_(e.is_(None), _not_before_period(e, period)),
                ),
                keyed,
            )
        elif kind == "event":
            d = t.c[snake(scope["date"])]
            cond = or_(and_(_not_before_period(d, period), _not_after_period(d, period)), keyed)
        else:
            parent, column = scope["table"], scope["columns"][0]
            if parent in contracts:
                pt = epr.metadata.tables[contracts[parent]["config"]["meta"]["epr_table"]]
                pcol, pcond = pt.c[snake(column)], condition(parent)
            else:
                pname, pcolname = _HAND_BUILT_PARENTS[column]
                pt = epr.metadata.tables[pname]
                pcol, pcond = pt.c[pcolname], hand_built[pname]
            ids = select(pcol) if pcond is None else select(pcol).where(pcond)
            cond = or_(t.c[snake(column)].in_(ids), keyed)
        out[name] = cond
        return cond

    for idb_table in contracts:
        condition(idb_table)
    return out


def _not_after_period(col, period: ReportingPeriod) -> ColumnElement[bool]:
    """The date (or timestamp) is on or before the period's last day."""
    return col < period.end_exclusive_ts if isinstance(col.type, DateTime) else col <= period.end


def _not_before_period(col, period: ReportingPeriod) -> ColumnElement[bool]:
    """The date (or timestamp) is on or after the period's first day."""
    return col >= period.start_ts if isinstance(col.type, DateTime) else col >= period.start


def scoped_queries(period: ReportingPeriod) -> dict[str, Select]:
    """One SELECT per EPR table (in :data:`~mhsds_pipeline.source.schema.TABLE_NAMES` order),
    restricted to what belongs to the period and ordered by key, then by every other column."""
    where = period_filters(period)
    queries: dict[str, Select] = {}
    for name in epr.TABLE_NAMES:
        table = epr.metadata.tables[name]
        keys = epr.EPR_KEYS[name]
        order = [table.c[k] for k in keys] + [c for c in table.columns if c.name not in keys]
        stmt = select(*table.columns)
        if where[name] is not None:
            stmt = stmt.where(where[name])
        queries[name] = stmt.order_by(*order)
    return queries
