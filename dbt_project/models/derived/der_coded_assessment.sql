-- Coded scored assessments per submitted month, tied to the referral's record of the month: MHS606
-- (referral level, dated by AssToolCompTimestamp) and MHS607 (care activity level, dated by its care
-- contact), as NHS England's 4-week-wait code reads them for the baseline outcome measure
-- (menh_bbrb 02_4w_waits/4w_waits_prep.py 385-440).

with referral as (
    select * from {{ ref('der_referral_month') }}
),

refer as (
    select
        a."UniqMonthID",
        r."RecordNumber",
        r."Person_ID",
        r."UniqServReqID",
        'MHS606' as "Der_AssessmentTable",
        a."CodedAssToolType",
        cast(a."AssToolCompTimestamp" as date) as "Der_AssessmentDate"
    from {{ source('mhsds_published', 'MHS606CodedScoreAssessmentRefer') }} a
    join referral r on r."UniqMonthID" = a."UniqMonthID" and r."ServiceRequestID" = a."ServiceRequestID"
),

act as (
    select
        s."UniqMonthID",
        c."RecordNumber",
        c."Person_ID",
        c."UniqServReqID",
        'MHS607' as "Der_AssessmentTable",
        s."CodedAssToolType",
        c."Der_ContactDate" as "Der_AssessmentDate"
    from {{ source('mhsds_published', 'MHS607CodedScoreAssessmentAct') }} s
    join {{ source('mhsds_published', 'MHS202CareActivity') }} ca
        on ca."UniqMonthID" = s."UniqMonthID" and ca."CareActID" = s."CareActID"
    join {{ ref('der_activity') }} c
        on c."UniqMonthID" = ca."UniqMonthID" and c."CareContactID" = ca."CareContactID"
)

select * from refer
union all
select * from act
