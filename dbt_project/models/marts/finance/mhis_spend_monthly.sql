-- MHIS spend by month at the PLICS-style grain (cost centre, service line, team) with its MHIS
-- category, funding source and scope decision. Finance reads this; mhsds_pipeline.finance.mhis
-- applies the MHIS rule (target, compliance, forecast) to it. Money only: no patient data.

with lines as (
    select * from {{ ref('int_ledger_lines_categorised') }}
),

aggregated as (
    select
        financial_year,
        month_start,
        cost_centre,
        service_line,
        team_local_id,
        mhis_category,
        funding_source,
        in_mhis_scope,
        exclusion_reason,
        cast(sum(amount_gbp) as numeric(16, 2)) as amount_gbp,
        cast(count(*) as bigint) as ledger_line_count
    from lines
    group by
        financial_year,
        month_start,
        cost_centre,
        service_line,
        team_local_id,
        mhis_category,
        funding_source,
        in_mhis_scope,
        exclusion_reason
)

select * from aggregated
