-- Ledger lines with the MHIS category of their cost centre and the MHIS scope decision:
-- a line counts towards MHIS only when its category AND its funding source are in scope
-- (ref_mhis_category, ref_mhis_funding_source); otherwise exclusion_reason says why (the
-- category's reason first). One row per ledger line.

with ledger_lines as (
    select * from {{ ref('stg_finance__ledger_lines') }}
),

cost_centres as (
    select * from {{ ref('int_cost_centres_categorised') }}
),

funding_sources as (
    select * from {{ ref('ref_mhis_funding_source') }}
),

categorised as (
    select
        ledger_lines.line_id,
        ledger_lines.financial_year,
        ledger_lines.month_start,
        ledger_lines.cost_centre,
        ledger_lines.service_line,
        cost_centres.team_local_id,
        coalesce(cost_centres.mhis_category, 'UNMAPPED') as mhis_category,
        ledger_lines.subjective_code,
        ledger_lines.funding_source,
        coalesce(cost_centres.category_in_mhis_scope, false)
            and coalesce(funding_sources.in_mhis_scope, false) as in_mhis_scope,
        case
            when not coalesce(cost_centres.category_in_mhis_scope, false)
                then coalesce(cost_centres.category_exclusion_reason, 'Unmapped cost centre')
            when not coalesce(funding_sources.in_mhis_scope, false)
                then coalesce(funding_sources.exclusion_reason, 'Unknown funding source')
        end as exclusion_reason,
        ledger_lines.amount_gbp
    from ledger_lines
    left join cost_centres
        on ledger_lines.cost_centre = cost_centres.cost_centre
    left join funding_sources
        on ledger_lines.funding_source = funding_sources.funding_source
)

select * from categorised
