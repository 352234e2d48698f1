with source as (
    select * from {{ source('epr', 'wards') }}
),

renamed as (
    select
        {{ mhsds_clean_string('ward_code') }} as ward_code,
        {{ mhsds_clean_string('ward_name') }} as ward_name,
        {{ mhsds_clean_string('site_code') }} as site_id,
        {{ mhsds_clean_string('patient_class') }} as default_admitted_patient_class_code,
        cast(beds as integer) as bed_count
    from source
)

select * from renamed
