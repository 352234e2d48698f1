-- Hospital provider spells with decided-to-admit, start and discharge timestamps split into
-- the MHSDS date and time items.

with admissions as (
    select * from {{ ref('stg_epr__admissions') }}
),

split as (
    select
        admissions.*,
        {{ mhsds_date_part('decided_to_admit_at') }} as decided_to_admit_date,
        {{ mhsds_time_part('decided_to_admit_at') }} as decided_to_admit_time,
        {{ mhsds_date_part('admitted_at') }} as spell_start_date,
        {{ mhsds_time_part('admitted_at') }} as spell_start_time,
        {{ mhsds_date_part(mhsds_as_at('discharged_at')) }} as discharge_date,
        {{ mhsds_time_part(mhsds_as_at('discharged_at')) }} as discharge_time
    from admissions
)

select * from split
