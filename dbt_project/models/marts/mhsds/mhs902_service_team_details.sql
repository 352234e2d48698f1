-- MHS902ServiceTeamDetails (mhsds.md 3.12): columns in IDB order with IDB names and types;
-- one row per teams row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_teams_mapped') }}
),

final as (
    select
        cast(team_local_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareProfTeamLocalID') }},
        cast({{ mhsds_string_literal(var('org_id_provider')) }} as {{ mhsds_type('varchar') }}) as {{ adapter.quote('OrgIDCareProfTeamLocalID') }},
        cast(service_team_type_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServTeamTypeMH') }},
        cast(service_team_age_group_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServTeamIntAgeGroup') }}
    from source
)

select * from final
