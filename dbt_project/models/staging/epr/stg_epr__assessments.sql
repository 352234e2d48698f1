with source as (
    select * from {{ source('epr', 'assessments') }}
),

renamed as (
    select
        {{ mhsds_clean_string('assessment_id') }} as assessment_id,
        {{ mhsds_clean_string('referral_id') }} as service_request_id,
        {{ mhsds_clean_string('intervention_id') }} as care_activity_id,
        {{ mhsds_clean_string('tool_snomed') }} as assessment_tool_snomed_code,
        {{ mhsds_clean_string('score') }} as person_score,
        cast(completed_at as timestamp) as completed_at,
        {{ mhsds_clean_string('clinician_id') }} as care_professional_local_id
    from source
)

select * from renamed
