-- MHS501HospProvSpell (mhsds.md 3.8): columns in IDB order with IDB names and types;
-- one row per admissions row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_hospital_spells_split') }}
),

final as (
    select
        cast(hospital_spell_id as varchar) as "HospProvSpellID",
        cast(service_request_id as varchar) as "ServiceRequestID",
        cast(decided_to_admit_date as date) as "DecidedToAdmitDate",
        cast(decided_to_admit_time as time) as "DecidedToAdmitTime",
        cast(spell_start_date as date) as "StartDateHospProvSpell",
        cast(spell_start_time as time) as "StartTimeHospProvSpell",
        cast(admission_source_code as varchar) as "SourceAdmMHHospProvSpell",
        cast(admission_method_code as varchar) as "MethAdmMHHospProvSpell",
        {{ mhsds_typed_null('varchar') }} as "PostcodeMainVisitor",
        {{ mhsds_typed_null('date') }} as "EstimatedDischDateHospProvSpell",
        cast(planned_discharge_date as date) as "PlannedDischDateHospProvSpell",
        {{ mhsds_typed_null('varchar') }} as "PlannedDestDisch",
        cast(discharge_date as date) as "DischDateHospProvSpell",
        cast(discharge_time as time) as "DischTimeHospProvSpell",
        cast(discharge_method_code as varchar) as "MethOfDischMHHospProvSpell",
        cast(discharge_destination_code as varchar) as "DestOfDischHospProvSpell",
        {{ mhsds_typed_null('varchar') }} as "PostcodeDischDestHospProvSpell"
    from source
)

select * from final
