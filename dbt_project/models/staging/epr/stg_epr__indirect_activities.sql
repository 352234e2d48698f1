with source as (
    select * from {{ source('epr', 'indirect_activities') }}
),

renamed as (
    select
        {{ mhsds_clean_string('indirect_activity_id') }} as indirect_activity_id,
        {{ mhsds_clean_string('referral_id') }} as service_request_id,
        {{ mhsds_clean_string('team_id') }} as team_local_id,
        {{ mhsds_clean_string('clinician_id') }} as care_professional_id,
        cast(start_at as timestamp) as activity_start_at,
        cast(duration_minutes as integer) as duration_minutes,
        {{ mhsds_clean_string('person_consulted') }} as person_consulted_code,
        {{ mhsds_clean_string('snomed_procedure') }} as procedure_snomed_code,
        {{ mhsds_clean_string('finding_scheme') }} as finding_scheme_code,
        {{ mhsds_clean_string('finding_code') }} as finding_code,
        cast(recorded_at as timestamp) as recorded_at
    from source
)

select * from renamed
