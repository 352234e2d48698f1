-- Audited outturn with the same MHIS categorisation as the ledger (int_ledger_lines_categorised):
-- the current map is applied to every year, so the baseline is on the same (restated) basis as
-- this year's spend (mhis_ltp.md A2: historic years restated after the 2021 re-categorisation).

with outturn as (
    select * from {{ ref('stg_finance__outturn') }}
),

cost_centres as (
    select * from {{ ref('int_cost_centres_categorised') }}
),

funding_sources as (
    select * from {{ ref('ref_mhis_funding_source') }}
),

categorised as (
    select
        outturn.financial_year,
        outturn.cost_centre,
        cost_centres.service_line,
        cost_centres.team_local_id,
        coalesce(cost_centres.mhis_category, 'UNMAPPED') as mhis_category,
        outturn.funding_source,
        coalesce(cost_centres.category_in_mhis_scope, false)
            and coalesce(funding_sources.in_mhis_scope, false) as in_mhis_scope,
        case
            when not coalesce(cost_centres.category_in_mhis_scope, false)
                then coalesce(cost_centres.category_exclusion_reason, 'Unmapped cost centre')
            when not coalesce(funding_sources.in_mhis_scope, false)
                then coalesce(funding_sources.exclusion_reason, 'Unknown funding source')
        end as exclusion_reason,
        outturn.outturn_status,
        outturn.outturn_gbp
    from outturn
    left join cost_centres
        on outturn.cost_centre = cost_centres.cost_centre
    left join funding_sources
        on outturn.funding_source = funding_sources.funding_source
)

select * from categorised
