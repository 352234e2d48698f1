-- MHS204IndirectActivity (mhsds.md 2.4): columns in IDB order with IDB names and types;
-- one row per indirect_activities row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_indirect_activities_split') }}
),

final as (
    select
        cast(service_request_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServiceRequestID') }},
        cast(team_local_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('OtherCareProfTeamLocalID') }},
        cast(activity_date as date) as {{ adapter.quote('IndirectActDate') }},
        cast(activity_time as time) as {{ adapter.quote('IndirectActTime') }},
        cast(person_consulted_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('IndActPersCons') }},
        cast(duration_minutes as integer) as {{ adapter.quote('DurationIndirectAct') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('OrgIDComm') }},
        cast(care_professional_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareProfLocalID') }},
        cast(procedure_snomed_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('IndActProcedure') }},
        cast(finding_scheme_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('FindSchemeInUse') }},
        cast(finding_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('Finding') }}
    from source
)

select * from final
