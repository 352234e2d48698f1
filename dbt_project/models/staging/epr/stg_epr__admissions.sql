with source as (
    select * from {{ source('epr', 'admissions') }}
),

renamed as (
    select
        {{ mhsds_clean_string('admission_id') }} as hospital_spell_id,
        {{ mhsds_clean_string('referral_id') }} as service_request_id,
        cast(decided_to_admit_at as timestamp) as decided_to_admit_at,
        cast(admitted_at as timestamp) as admitted_at,
        {{ mhsds_clean_string('admission_source') }} as admission_source_code,
        {{ mhsds_clean_string('admission_method') }} as admission_method_code,
        cast(planned_discharge_on as date) as planned_discharge_date,
        cast(discharged_at as timestamp) as discharged_at,
        {{ mhsds_clean_string('discharge_method') }} as discharge_method_code,
        {{ mhsds_clean_string('discharge_destination') }} as discharge_destination_code
    from source
)

select * from renamed
