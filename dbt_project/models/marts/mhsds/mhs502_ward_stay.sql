-- MHS502WardStay (mhsds.md 3.9): columns in IDB order with IDB names and types;
-- one row per ward_movements row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_ward_stays_split') }}
),

final as (
    select
        cast(ward_stay_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('WardStayID') }},
        cast(ward_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('WardCode') }},
        cast(hospital_spell_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('HospProvSpellID') }},
        cast(ward_stay_start_date as date) as {{ adapter.quote('StartDateWardStay') }},
        cast(ward_stay_start_time as time) as {{ adapter.quote('StartTimeWardStay') }},
        {{ mhsds_typed_null('date') }} as {{ adapter.quote('EndDateMHTrialLeave') }},
        cast(ward_stay_end_date as date) as {{ adapter.quote('EndDateWardStay') }},
        cast(ward_stay_end_time as time) as {{ adapter.quote('EndTimeWardStay') }},
        cast(admitted_patient_class_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('MHAdmittedPatientClass') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('SpecialisedMHServiceCode') }}
    from source
)

select * from final
