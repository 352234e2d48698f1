-- MHS204IndirectActivity (mhsds.md 2.4): columns in IDB order with IDB names and types;
-- one row per indirect_activities row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_indirect_activities_split') }}
),

final as (
    select
        cast(service_request_id as varchar) as "ServiceRequestID",
        cast(team_local_id as varchar) as "OtherCareProfTeamLocalID",
        cast(activity_date as date) as "IndirectActDate",
        cast(activity_time as time) as "IndirectActTime",
        cast(person_consulted_code as varchar) as "IndActPersCons",
        cast(duration_minutes as integer) as "DurationIndirectAct",
        {{ mhsds_typed_null('varchar') }} as "OrgIDComm",
        cast(care_professional_id as varchar) as "CareProfLocalID",
        cast(procedure_snomed_code as varchar) as "IndActProcedure",
        cast(finding_scheme_code as varchar) as "FindSchemeInUse",
        cast(finding_code as varchar) as "Finding"
    from source
)

select * from final
