with source as (
    select * from {{ source('epr', 'interventions') }}
),

renamed as (
    select
        {{ mhsds_clean_string('intervention_id') }} as care_activity_id,
        {{ mhsds_clean_string('appointment_id') }} as care_contact_id,
        {{ mhsds_clean_string('snomed_procedure') }} as procedure_snomed_code,
        {{ mhsds_clean_string('finding_scheme') }} as finding_scheme_code,
        {{ mhsds_clean_string('finding_code') }} as finding_code,
        cast(duration_minutes as integer) as duration_minutes,
        cast(recorded_at as timestamp) as recorded_at
    from source
)

select * from renamed
