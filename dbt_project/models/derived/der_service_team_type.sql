-- The referral's team types for the month (NHS England's ServiceTeamType, menh_bbrb
-- 00_generic_prep.py 362-403): the MHS101 referral's team (v6, UniqMonthID > 1488) together with
-- every MHS102 other service type row of the same month, each typed by that month's MHS902
-- ServTeamTypeMH. One row per team row: a referral-month can have several.

with referral as (
    select * from {{ ref('der_referral_month') }}
),

team as (
    select "UniqMonthID", "CareProfTeamLocalID", "ServTeamTypeMH"
    from {{ source('mhsds_published', 'MHS902ServiceTeamDetails') }}
),

team_rows as (
    select r."UniqMonthID", r."RecordNumber", r."UniqServReqID", r."CareProfTeamLocalID" as "TeamLocalID",
           'MHS101' as "Der_TeamSource"
    from referral r
    where r."CareProfTeamLocalID" is not null
    union all
    select r."UniqMonthID", r."RecordNumber", r."UniqServReqID", o."OtherCareProfTeamLocalID" as "TeamLocalID",
           'MHS102' as "Der_TeamSource"
    from {{ source('mhsds_published', 'MHS102OtherServiceType') }} o
    join referral r on r."UniqMonthID" = o."UniqMonthID" and r."ServiceRequestID" = o."ServiceRequestID"
)

select
    t."UniqMonthID",
    t."RecordNumber",
    t."UniqServReqID",
    t."TeamLocalID",
    tt."ServTeamTypeMH" as "ServTeamTypeRefToMH",
    t."Der_TeamSource"
from team_rows t
left join team tt on tt."UniqMonthID" = t."UniqMonthID" and tt."CareProfTeamLocalID" = t."TeamLocalID"
