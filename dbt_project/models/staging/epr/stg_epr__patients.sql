with source as (
    select * from {{ source('epr', 'patients') }}
),

renamed as (
    select
        {{ mhsds_clean_string('patient_id') }} as local_patient_id,
        {{ mhsds_clean_string('nhs_number') }} as nhs_number,
        {{ mhsds_clean_string('nhs_number_status') }} as nhs_number_status_code,
        cast(date_of_birth as date) as birth_date,
        {{ mhsds_clean_string('postcode') }} as postcode,
        {{ mhsds_clean_string('gender_identity') }} as gender_identity_code,
        {{ mhsds_clean_string('stated_gender') }} as stated_gender_code,
        {{ mhsds_clean_string('ethnicity') }} as ethnic_category_code,
        {{ mhsds_clean_string('preferred_language') }} as preferred_language_code,
        {{ mhsds_clean_string('marital_status') }} as marital_status_code,
        cast(date_of_death as date) as death_date,
        cast(created_at as timestamp) as record_created_at,
        cast(updated_at as timestamp) as record_updated_at
    from source
)

select * from renamed
