-- MHS501HospProvSpell (mhsds.md 3.8): columns in IDB order with IDB names and types;
-- one row per admissions row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_hospital_spells_split') }}
),

final as (
    select
        cast(hospital_spell_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('HospProvSpellID') }},
        cast(service_request_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServiceRequestID') }},
        cast(decided_to_admit_date as date) as {{ adapter.quote('DecidedToAdmitDate') }},
        cast(decided_to_admit_time as time) as {{ adapter.quote('DecidedToAdmitTime') }},
        cast(spell_start_date as date) as {{ adapter.quote('StartDateHospProvSpell') }},
        cast(spell_start_time as time) as {{ adapter.quote('StartTimeHospProvSpell') }},
        cast(admission_source_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('SourceAdmMHHospProvSpell') }},
        cast(admission_method_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('MethAdmMHHospProvSpell') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('PostcodeMainVisitor') }},
        {{ mhsds_typed_null('date') }} as {{ adapter.quote('EstimatedDischDateHospProvSpell') }},
        cast(planned_discharge_date as date) as {{ adapter.quote('PlannedDischDateHospProvSpell') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('PlannedDestDisch') }},
        cast(discharge_date as date) as {{ adapter.quote('DischDateHospProvSpell') }},
        cast(discharge_time as time) as {{ adapter.quote('DischTimeHospProvSpell') }},
        cast(discharge_method_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('MethOfDischMHHospProvSpell') }},
        cast(discharge_destination_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('DestOfDischHospProvSpell') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('PostcodeDischDestHospProvSpell') }}
    from source
)

select * from final
