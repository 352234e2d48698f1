with source as (
    select * from {{ source('raw_finance', 'outturn') }}
),

renamed as (
    select
        {{ mhsds_clean_string('financial_year') }} as financial_year,
        {{ mhsds_clean_string('cost_centre') }} as cost_centre,
        upper({{ mhsds_clean_string('funding_source') }}) as funding_source,
        cast(outturn_gbp as numeric(16, 2)) as outturn_gbp,
        {{ mhsds_clean_string('status') }} as outturn_status
    from source
)

select * from renamed
