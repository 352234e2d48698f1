-- Ward stays with start / end timestamps split into date and time, and the admitted patient
-- class defaulted from the ward when the movement does not record one (the EPR keeps the
-- class on the ward; a movement may override it). Wards are reduced to one row per ward_code
-- first, so a duplicated ward cannot duplicate ward stays (ward uniqueness is tested).

with ward_movements as (
    select * from {{ ref('stg_epr__ward_movements') }}
),

wards as (
    select
        ward_code,
        min(default_admitted_patient_class_code) as default_admitted_patient_class_code
    from {{ ref('stg_epr__wards') }}
    group by ward_code
),

split as (
    select
        ward_movements.ward_stay_id,
        ward_movements.hospital_spell_id,
        ward_movements.ward_code,
        ward_movements.ward_stay_start_at,
        ward_movements.ward_stay_end_at,
        {{ mhsds_date_part('ward_movements.ward_stay_start_at') }} as ward_stay_start_date,
        {{ mhsds_time_part('ward_movements.ward_stay_start_at') }} as ward_stay_start_time,
        {{ mhsds_date_part(mhsds_as_at('ward_movements.ward_stay_end_at')) }} as ward_stay_end_date,
        {{ mhsds_time_part(mhsds_as_at('ward_movements.ward_stay_end_at')) }} as ward_stay_end_time,
        ward_movements.admitted_patient_class_code as recorded_admitted_patient_class_code,
        coalesce(
            ward_movements.admitted_patient_class_code,
            wards.default_admitted_patient_class_code
        ) as admitted_patient_class_code
    from ward_movements
    left join wards
        on ward_movements.ward_code = wards.ward_code
)

select * from split
