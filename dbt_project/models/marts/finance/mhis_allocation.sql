-- Programme allocation growth per financial year with the MHIS rule variant of that year
-- (seed ref_mhis_rule_variant: uplift, prior-year shortfall, > or >=, NHSE target precedence).

with allocations as (
    select * from {{ ref('stg_finance__allocations') }}
),

rule_variants as (
    select * from {{ ref('ref_mhis_rule_variant') }}
),

joined as (
    select
        allocations.financial_year,
        allocations.programme_allocation_gbp,
        allocations.base_growth_pct,
        allocations.convergence_adjustment_pct,
        allocations.nhse_target_gbp,
        rule_variants.rule_version,
        rule_variants.rule_text,
        cast(rule_variants.additional_uplift_pct as numeric(7, 3)) as additional_uplift_pct,
        rule_variants.add_prior_year_shortfall,
        rule_variants.comparison,
        rule_variants.nhse_target_precedence
    from allocations
    left join rule_variants
        on allocations.financial_year = rule_variants.financial_year
)

select * from joined
