-- MHS202CareActivity (mhsds.md 3.7): columns in IDB order with IDB names and types;
-- one row per interventions row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('stg_epr__interventions') }}
),

final as (
    select
        cast(care_activity_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareActID') }},
        cast(care_contact_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareContactID') }},
        cast(duration_minutes as integer) as {{ adapter.quote('ClinContactDurOfCareAct') }},
        cast(procedure_snomed_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('Procedure') }},
        cast(finding_scheme_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('FindSchemeInUse') }},
        cast(finding_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('Finding') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('Observation') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('ObsValue') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('UnitofMeasurement_UCUM') }}
    from source
)

select * from final
