with source as (
    select * from {{ source('raw_finance', 'allocations') }}
),

renamed as (
    select
        {{ mhsds_clean_string('financial_year') }} as financial_year,
        cast(programme_allocation_gbp as numeric(16, 2)) as programme_allocation_gbp,
        cast(base_growth_pct as numeric(7, 3)) as base_growth_pct,
        cast(convergence_adjustment_pct as numeric(7, 3)) as convergence_adjustment_pct,
        cast(nhse_target_gbp as numeric(16, 2)) as nhse_target_gbp
    from source
)

select * from renamed
