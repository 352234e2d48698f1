with source as (
    select * from {{ source('raw_finance', 'cost_centres') }}
),

renamed as (
    select
        {{ mhsds_clean_string('cost_centre') }} as cost_centre,
        {{ mhsds_clean_string('cost_centre_name') }} as cost_centre_name,
        {{ mhsds_clean_string('service_line') }} as service_line,
        {{ mhsds_clean_string('team_local_id') }} as team_local_id
    from source
)

select * from renamed
