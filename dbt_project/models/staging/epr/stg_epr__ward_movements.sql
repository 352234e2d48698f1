with source as (
    select * from {{ source('epr', 'ward_movements') }}
),

renamed as (
    select
        {{ mhsds_clean_string('ward_stay_id') }} as ward_stay_id,
        {{ mhsds_clean_string('admission_id') }} as hospital_spell_id,
        {{ mhsds_clean_string('ward_code') }} as ward_code,
        cast(start_at as timestamp) as ward_stay_start_at,
        cast(end_at as timestamp) as ward_stay_end_at,
        {{ mhsds_clean_string('patient_class') }} as admitted_patient_class_code
    from source
)

select * from renamed
