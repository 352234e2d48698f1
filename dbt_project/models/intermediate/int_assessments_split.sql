-- Scored assessments routed to their MHSDS table: with an intervention (care activity) ->
-- MHS607CodedScoreAssessmentAct, without -> MHS606CodedScoreAssessmentRefer. Keeps the EPR key
-- (assessment_id) beside the MHSDS columns so rows can be traced back.

with assessments as (
    select * from {{ ref('stg_epr__assessments') }}
),

split as (
    select
        assessments.*,
        case
            when assessments.care_activity_id is null then 'mhs606_coded_score_assessment_refer'
            else 'mhs607_coded_score_assessment_act'
        end as mhsds_table
    from assessments
)

select * from split
