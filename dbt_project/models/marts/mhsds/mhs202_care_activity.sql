-- MHS202CareActivity (mhsds.md 3.7): columns in IDB order with IDB names and types;
-- one row per interventions row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('stg_epr__interventions') }}
),

final as (
    select
        cast(care_activity_id as varchar) as "CareActID",
        cast(care_contact_id as varchar) as "CareContactID",
        cast(duration_minutes as integer) as "ClinContactDurOfCareAct",
        cast(procedure_snomed_code as varchar) as "Procedure",
        cast(finding_scheme_code as varchar) as "FindSchemeInUse",
        cast(finding_code as varchar) as "Finding",
        {{ mhsds_typed_null('varchar') }} as "Observation",
        {{ mhsds_typed_null('varchar') }} as "ObsValue",
        {{ mhsds_typed_null('varchar') }} as "UnitofMeasurement_UCUM"
    from source
)

select * from final
