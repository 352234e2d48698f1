-- MHS607CodedScoreAssessmentAct (mhsds.md 3.11): columns in IDB order with IDB names and types;
-- one row per assessments row routed here, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_assessments_split') }}
    where mhsds_table = 'mhs607_coded_score_assessment_act'
),

final as (
    select
        cast(care_activity_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareActID') }},
        cast(assessment_tool_snomed_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CodedAssToolType') }},
        cast(person_score as {{ mhsds_type('varchar') }}) as {{ adapter.quote('PersScore') }}
    from source
)

select * from final
