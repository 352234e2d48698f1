-- MHS502WardStay (mhsds.md 3.9): columns in IDB order with IDB names and types;
-- one row per ward_movements row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_ward_stays_split') }}
),

final as (
    select
        cast(ward_stay_id as varchar) as "WardStayID",
        cast(ward_code as varchar) as "WardCode",
        cast(hospital_spell_id as varchar) as "HospProvSpellID",
        cast(ward_stay_start_date as date) as "StartDateWardStay",
        cast(ward_stay_start_time as time) as "StartTimeWardStay",
        {{ mhsds_typed_null('date') }} as "EndDateMHTrialLeave",
        cast(ward_stay_end_date as date) as "EndDateWardStay",
        cast(ward_stay_end_time as time) as "EndTimeWardStay",
        cast(admitted_patient_class_code as varchar) as "MHAdmittedPatientClass",
        {{ mhsds_typed_null('varchar') }} as "SpecialisedMHServiceCode"
    from source
)

select * from final
