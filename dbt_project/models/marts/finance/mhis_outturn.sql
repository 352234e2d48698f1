-- Audited year-end outturn by cost centre and funding source, categorised on the current
-- (restated) MHIS basis: the prior-year baseline of the MHIS target.

with outturn as (
    select * from {{ ref('int_outturn_categorised') }}
),

aggregated as (
    select
        financial_year,
        cost_centre,
        service_line,
        team_local_id,
        mhis_category,
        funding_source,
        in_mhis_scope,
        exclusion_reason,
        min(outturn_status) as outturn_status,
        cast(sum(outturn_gbp) as numeric(16, 2)) as outturn_gbp
    from outturn
    group by
        financial_year,
        cost_centre,
        service_line,
        team_local_id,
        mhis_category,
        funding_source,
        in_mhis_scope,
        exclusion_reason
)

select * from aggregated
