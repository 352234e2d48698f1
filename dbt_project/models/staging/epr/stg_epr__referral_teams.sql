with source as (
    select * from {{ source('epr', 'referral_teams') }}
),

renamed as (
    select
        {{ mhsds_clean_string('referral_id') }} as service_request_id,
        {{ mhsds_clean_string('team_id') }} as team_local_id,
        cast(assigned_on as date) as assigned_date,
        cast(closed_on as date) as closed_date,
        {{ mhsds_clean_string('closure_reason') }} as closure_reason_code,
        cast(rejected_on as date) as rejected_date,
        {{ mhsds_clean_string('reject_reason') }} as rejection_reason_code
    from source
)

select * from renamed
