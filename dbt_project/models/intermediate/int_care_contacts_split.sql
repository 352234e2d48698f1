-- Care contacts with the appointment start split into CareContDate and CareContTime.

with appointments as (
    select * from {{ ref('stg_epr__appointments') }}
),

split as (
    select
        appointments.*,
        {{ mhsds_date_part('contact_start_at') }} as contact_date,
        {{ mhsds_time_part('contact_start_at') }} as contact_time
    from appointments
)

select * from split
