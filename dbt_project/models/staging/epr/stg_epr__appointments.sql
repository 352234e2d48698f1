with source as (
    select * from {{ source('epr', 'appointments') }}
),

renamed as (
    select
        {{ mhsds_clean_string('appointment_id') }} as care_contact_id,
        {{ mhsds_clean_string('referral_id') }} as service_request_id,
        {{ mhsds_clean_string('team_id') }} as team_local_id,
        {{ mhsds_clean_string('clinician_id') }} as care_professional_local_id,
        cast(start_at as timestamp) as contact_start_at,
        cast(duration_minutes as integer) as duration_minutes,
        {{ mhsds_clean_string('consultation_type') }} as consultation_type_code,
        {{ mhsds_clean_string('contact_mechanism') }} as consultation_mechanism_code,
        {{ mhsds_clean_string('location_type') }} as activity_location_type_code,
        {{ mhsds_clean_string('attendance') }} as attendance_status_code,
        cast(cancelled_on as date) as cancelled_date,
        {{ mhsds_clean_string('cancellation_reason') }} as cancellation_reason_code,
        cast(recorded_at as timestamp) as recorded_at
    from source
)

select * from renamed
