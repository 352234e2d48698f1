-- Each ledger cost centre with its MHIS category and whether that category is in MHIS scope
-- (seeds ref_mhis_cost_centre_map, ref_mhis_category). One row per cost centre: both seeds are
-- unique on their key (tested), so the left joins cannot fan out. A cost centre missing from the
-- map becomes UNMAPPED (out of scope, with a reason) and fails the staging relationships test.

with cost_centres as (
    select * from {{ ref('stg_finance__cost_centres') }}
),

cost_centre_map as (
    select * from {{ ref('ref_mhis_cost_centre_map') }}
),

categories as (
    select * from {{ ref('ref_mhis_category') }}
),

mapped as (
    select
        cost_centres.cost_centre,
        cost_centres.cost_centre_name,
        cost_centres.service_line,
        cost_centres.team_local_id,
        coalesce(cost_centre_map.mhis_category, 'UNMAPPED') as mhis_category
    from cost_centres
    left join cost_centre_map
        on cost_centres.cost_centre = cost_centre_map.cost_centre
),

categorised as (
    select
        mapped.cost_centre,
        mapped.cost_centre_name,
        mapped.service_line,
        mapped.team_local_id,
        mapped.mhis_category,
        coalesce(categories.in_mhis_scope, false) as category_in_mhis_scope,
        categories.exclusion_reason as category_exclusion_reason
    from mapped
    left join categories
        on mapped.mhis_category = categories.mhis_category
)

select * from categorised
