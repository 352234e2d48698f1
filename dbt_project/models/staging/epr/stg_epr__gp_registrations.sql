with source as (
    select * from {{ source('epr', 'gp_registrations') }}
),

renamed as (
    select
        {{ mhsds_clean_string('patient_id') }} as local_patient_id,
        {{ mhsds_clean_string('practice_code') }} as gp_practice_code,
        cast(registered_on as date) as registration_start_date,
        cast(deregistered_on as date) as registration_end_date
    from source
)

select * from renamed
