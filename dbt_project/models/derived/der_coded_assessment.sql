-- Coded scored assessments per submitted month, tied to the referral's record of the month: MHS606
-- (referral level, dated by AssToolCompTimestamp) and MHS607 (care activity level, dated by its care
-- contact), as NHS England's 4-week-wait code reads them for the baseline outcome measure
-- (menh_bbrb 02_4w_waits/4w_waits_prep.py 385-440).

with referral as (
    select * from {{ ref('der_referral_month') }}
),

refer as (
    select
        a.{{ adapter.quote('UniqMonthID') }},
        r.{{ adapter.quote('RecordNumber') }},
        r.{{ adapter.quote('Person_ID') }},
        r.{{ adapter.quote('UniqServReqID') }},
        'MHS606' as {{ adapter.quote('Der_AssessmentTable') }},
        a.{{ adapter.quote('CodedAssToolType') }},
        cast(a.{{ adapter.quote('AssToolCompTimestamp') }} as date) as {{ adapter.quote('Der_AssessmentDate') }}
    from {{ source('mhsds_published', 'MHS606CodedScoreAssessmentRefer') }} a
    join referral r on r.{{ adapter.quote('UniqMonthID') }} = a.{{ adapter.quote('UniqMonthID') }} and r.{{ adapter.quote('ServiceRequestID') }} = a.{{ adapter.quote('ServiceRequestID') }}
),

act as (
    select
        s.{{ adapter.quote('UniqMonthID') }},
        c.{{ adapter.quote('RecordNumber') }},
        c.{{ adapter.quote('Person_ID') }},
        c.{{ adapter.quote('UniqServReqID') }},
        'MHS607' as {{ adapter.quote('Der_AssessmentTable') }},
        s.{{ adapter.quote('CodedAssToolType') }},
        c.{{ adapter.quote('Der_ContactDate') }} as {{ adapter.quote('Der_AssessmentDate') }}
    from {{ source('mhsds_published', 'MHS607CodedScoreAssessmentAct') }} s
    join {{ source('mhsds_published', 'MHS202CareActivity') }} ca
        on ca.{{ adapter.quote('UniqMonthID') }} = s.{{ adapter.quote('UniqMonthID') }} and ca.{{ adapter.quote('CareActID') }} = s.{{ adapter.quote('CareActID') }}
    join {{ ref('der_activity') }} c
        on c.{{ adapter.quote('UniqMonthID') }} = ca.{{ adapter.quote('UniqMonthID') }} and c.{{ adapter.quote('CareContactID') }} = ca.{{ adapter.quote('CareContactID') }}
)

select * from refer
union all
select * from act
