with source as (
    select * from {{ source('epr', 'diagnoses') }}
),

renamed as (
    select
        {{ mhsds_clean_string('diagnosis_id') }} as diagnosis_id,
        {{ mhsds_clean_string('referral_id') }} as service_request_id,
        {{ mhsds_clean_string('scheme') }} as diagnosis_scheme_code,
        {{ mhsds_clean_string('code') }} as diagnosis_code,
        upper({{ mhsds_clean_string('rank') }}) as diagnosis_rank,
        cast(diagnosed_at as timestamp) as diagnosed_at
    from source
)

select * from renamed
