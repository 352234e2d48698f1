with source as (
    select * from {{ source('epr', 'referrals') }}
),

renamed as (
    select
        {{ mhsds_clean_string('referral_id') }} as service_request_id,
        {{ mhsds_clean_string('patient_id') }} as local_patient_id,
        {{ mhsds_clean_string('team_id') }} as team_local_id,
        cast(received_at as timestamp) as referral_received_at,
        {{ mhsds_clean_string('source_of_referral') }} as referral_source_code,
        {{ mhsds_clean_string('primary_reason') }} as primary_reason_code,
        {{ mhsds_clean_string('priority') }} as clinical_priority_code,
        {{ mhsds_clean_string('commissioner_code') }} as commissioner_org_id,
        cast(discharged_at as timestamp) as discharged_at,
        cast(rejected_on as date) as rejected_date,
        {{ mhsds_clean_string('reject_reason') }} as rejection_reason_code,
        {{ mhsds_clean_string('closure_reason') }} as closure_reason_code,
        cast(updated_at as timestamp) as record_updated_at
    from source
)

select * from renamed
