with source as (
    select * from {{ source('epr', 'teams') }}
),

renamed as (
    select
        {{ mhsds_clean_string('team_id') }} as team_local_id,
        {{ mhsds_clean_string('team_name') }} as team_name,
        {{ mhsds_clean_string('service_line') }} as service_line,
        {{ mhsds_clean_string('team_type_code') }} as service_team_type_code,
        {{ mhsds_clean_string('age_group') }} as local_age_group_code,
        cast(active_from as date) as active_from_date,
        cast(active_to as date) as active_to_date
    from source
)

select * from renamed
