-- The referral's team types for the month (NHS England's ServiceTeamType, menh_bbrb
-- 00_generic_prep.py 362-403): the MHS101 referral's team (v6, UniqMonthID > 1488) together with
-- every MHS102 other service type row of the same month, each typed by that month's MHS902
-- ServTeamTypeMH. One row per team row: a referral-month can have several.

with referral as (
    select * from {{ ref('der_referral_month') }}
),

team as (
    select {{ adapter.quote('UniqMonthID') }}, {{ adapter.quote('CareProfTeamLocalID') }}, {{ adapter.quote('ServTeamTypeMH') }}
    from {{ source('mhsds_published', 'MHS902ServiceTeamDetails') }}
),

team_rows as (
    select r.{{ adapter.quote('UniqMonthID') }}, r.{{ adapter.quote('RecordNumber') }}, r.{{ adapter.quote('UniqServReqID') }}, r.{{ adapter.quote('CareProfTeamLocalID') }} as {{ adapter.quote('TeamLocalID') }},
           'MHS101' as {{ adapter.quote('Der_TeamSource') }}
    from referral r
    where r.{{ adapter.quote('CareProfTeamLocalID') }} is not null
    union all
    select r.{{ adapter.quote('UniqMonthID') }}, r.{{ adapter.quote('RecordNumber') }}, r.{{ adapter.quote('UniqServReqID') }}, o.{{ adapter.quote('OtherCareProfTeamLocalID') }} as {{ adapter.quote('TeamLocalID') }},
           'MHS102' as {{ adapter.quote('Der_TeamSource') }}
    from {{ source('mhsds_published', 'MHS102OtherServiceType') }} o
    join referral r on r.{{ adapter.quote('UniqMonthID') }} = o.{{ adapter.quote('UniqMonthID') }} and r.{{ adapter.quote('ServiceRequestID') }} = o.{{ adapter.quote('ServiceRequestID') }}
)

select
    t.{{ adapter.quote('UniqMonthID') }},
    t.{{ adapter.quote('RecordNumber') }},
    t.{{ adapter.quote('UniqServReqID') }},
    t.{{ adapter.quote('TeamLocalID') }},
    tt.{{ adapter.quote('ServTeamTypeMH') }} as {{ adapter.quote('ServTeamTypeRefToMH') }},
    t.{{ adapter.quote('Der_TeamSource') }}
from team_rows t
left join team tt on tt.{{ adapter.quote('UniqMonthID') }} = t.{{ adapter.quote('UniqMonthID') }} and tt.{{ adapter.quote('CareProfTeamLocalID') }} = t.{{ adapter.quote('TeamLocalID') }}
