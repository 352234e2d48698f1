-- MHS902ServiceTeamDetails (mhsds.md 3.12): columns in IDB order with IDB names and types;
-- one row per teams row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_teams_mapped') }}
),

final as (
    select
        cast(team_local_id as varchar) as "CareProfTeamLocalID",
        cast({{ mhsds_string_literal(var('org_id_provider')) }} as varchar) as "OrgIDCareProfTeamLocalID",
        cast(service_team_type_code as varchar) as "ServTeamTypeMH",
        cast(service_team_age_group_code as varchar) as "ServTeamIntAgeGroup"
    from source
)

select * from final
