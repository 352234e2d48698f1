-- MHS607CodedScoreAssessmentAct (mhsds.md 3.11): columns in IDB order with IDB names and types;
-- one row per assessments row routed here, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_assessments_split') }}
    where mhsds_table = 'mhs607_coded_score_assessment_act'
),

final as (
    select
        cast(care_activity_id as varchar) as "CareActID",
        cast(assessment_tool_snomed_code as varchar) as "CodedAssToolType",
        cast(person_score as varchar) as "PersScore"
    from source
)

select * from final
