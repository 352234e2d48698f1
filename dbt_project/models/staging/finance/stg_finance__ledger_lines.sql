with source as (
    select * from {{ source('raw_finance', 'ledger_lines') }}
),

renamed as (
    select
        {{ mhsds_clean_string('line_id') }} as line_id,
        {{ mhsds_clean_string('financial_year') }} as financial_year,
        cast({{ mhsds_clean_string('period') }} || '-01' as date) as month_start,
        {{ mhsds_clean_string('cost_centre') }} as cost_centre,
        {{ mhsds_clean_string('service_line') }} as service_line,
        {{ mhsds_clean_string('subjective_code') }} as subjective_code,
        {{ mhsds_clean_string('subjective_name') }} as subjective_name,
        upper({{ mhsds_clean_string('funding_source') }}) as funding_source,
        cast(amount_gbp as numeric(16, 2)) as amount_gbp
    from source
)

select * from renamed
