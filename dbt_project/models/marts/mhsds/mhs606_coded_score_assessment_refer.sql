-- MHS606CodedScoreAssessmentRefer (mhsds.md 3.11): columns in IDB order with IDB names and types;
-- one row per assessments row routed here, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_assessments_split') }}
    where mhsds_table = 'mhs606_coded_score_assessment_refer'
),

final as (
    select
        cast(service_request_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServiceRequestID') }},
        cast(assessment_tool_snomed_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CodedAssToolType') }},
        cast(person_score as {{ mhsds_type('varchar') }}) as {{ adapter.quote('PersScore') }},
        cast(completed_at as timestamp) as {{ adapter.quote('AssToolCompTimestamp') }},
        cast(care_professional_local_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareProfLocalID') }}
    from source
)

select * from final
