-- Teams with their local intended age group mapped to the national SERVICE OR TEAM INTENDED AGE
-- GROUP code (seed ref_team_age_group_map). One row per teams row: the seed is unique on
-- local_age_group, so the left join cannot fan out; an unmapped local code gives NULL (tested).

with teams as (
    select * from {{ ref('stg_epr__teams') }}
),

age_group_map as (
    select * from {{ ref('ref_team_age_group_map') }}
),

mapped as (
    select
        teams.team_local_id,
        teams.team_name,
        teams.service_line,
        teams.service_team_type_code,
        teams.local_age_group_code,
        age_group_map.code as service_team_age_group_code,
        teams.active_from_date,
        teams.active_to_date
    from teams
    left join age_group_map
        on upper(teams.local_age_group_code) = age_group_map.local_age_group
)

select * from mapped
