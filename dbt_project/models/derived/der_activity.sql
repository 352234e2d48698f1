-- Activity per submitted month, as NHS England's nhse_pre_proc_activity (menh_bbrb
-- 02_nhse_pre_processing_tables.py 139-189): every MHS201 care contact (DIRECT) and every MHS204
-- indirect activity (INDIRECT), tied to the referral's record of the same month (RecordNumber,
-- UniqServReqID). Der_DirectContact: attended (AttendStatus) with a direct consultation mechanism,
-- code lists from ref_ltp_metric_code (metric_id Der_DirectContact) as in force in the month.
-- AgeCareContDate: age at the contact; null for indirect activity (the measures then use the
-- month's AgeRepPeriodEnd, as NHS England's code does). Der_IndActProcCode: an indirect activity's
-- SNOMED CT procedure concept (text before the first ':'); a contact's are in der_care_activity.

with referral as (
    select * from {{ ref('der_referral_month') }}
),

person as (
    select "UniqMonthID", "LocalPatientID", "PersonBirthDate" from {{ ref('der_person_month') }}
),

codes as (
    select code_list, cast(code as varchar) as code, cast(valid_from as date) as valid_from,
           cast(nullif(cast(valid_to as varchar), '') as date) as valid_to
    from {{ ref('ref_ltp_metric_code') }}
    where metric_id = 'Der_DirectContact'
),

direct as (
    select
        c."UniqMonthID",
        r."RecordNumber",
        r."Person_ID",
        r."UniqServReqID",
        'DIRECT' as "Der_ActivityType",
        r."OrgIDProv" || c."CareContactID" as "Der_ActivityUniqID",
        c."CareContactID",
        c."CareContDate" as "Der_ContactDate",
        c."CareContTime" as "Der_ContactTime",
        coalesce(c."OtherCareProfTeamLocalID", r."CareProfTeamLocalID") as "TeamLocalID",
        c."AttendStatus",
        c."ConsMechanismMH",
        case when exists (select 1 from codes a where a.code_list = 'attend_status' and a.code = c."AttendStatus"
                            and r."ReportingPeriodStartDate" >= a.valid_from
                            and (a.valid_to is null or r."ReportingPeriodStartDate" <= a.valid_to))
                  and exists (select 1 from codes m where m.code_list = 'cons_mechanism' and m.code = c."ConsMechanismMH"
                            and r."ReportingPeriodStartDate" >= m.valid_from
                            and (m.valid_to is null or r."ReportingPeriodStartDate" <= m.valid_to))
             then true else false end as "Der_DirectContact",
        {{ mhsds_age_years('p."PersonBirthDate"', 'c."CareContDate"') }} as "AgeCareContDate",
        cast(null as varchar) as "Der_IndActProcCode"
    from {{ source('mhsds_published', 'MHS201CareContact') }} c
    join referral r on r."UniqMonthID" = c."UniqMonthID" and r."ServiceRequestID" = c."ServiceRequestID"
    join person p on p."UniqMonthID" = r."UniqMonthID" and p."LocalPatientID" = r."LocalPatientID"
),

indirect as (
    select
        i."UniqMonthID",
        r."RecordNumber",
        r."Person_ID",
        r."UniqServReqID",
        'INDIRECT' as "Der_ActivityType",
        r."OrgIDProv" || i."ServiceRequestID" || ':' || cast(i."IndirectActDate" as varchar) || ':'
            || coalesce(cast(i."IndirectActTime" as varchar), '') || ':'
            || cast(row_number() over (partition by i."UniqMonthID", i."ServiceRequestID", i."IndirectActDate",
                                                    i."IndirectActTime" order by i."OtherCareProfTeamLocalID") as varchar)
            as "Der_ActivityUniqID",
        cast(null as varchar) as "CareContactID",
        i."IndirectActDate" as "Der_ContactDate",
        i."IndirectActTime" as "Der_ContactTime",
        coalesce(i."OtherCareProfTeamLocalID", r."CareProfTeamLocalID") as "TeamLocalID",
        cast(null as varchar) as "AttendStatus",
        cast(null as varchar) as "ConsMechanismMH",
        false as "Der_DirectContact",
        cast(null as integer) as "AgeCareContDate",
        nullif(trim(split_part(i."IndActProcedure", ':', 1)), '') as "Der_IndActProcCode"
    from {{ source('mhsds_published', 'MHS204IndirectActivity') }} i
    join referral r on r."UniqMonthID" = i."UniqMonthID" and r."ServiceRequestID" = i."ServiceRequestID"
)

select * from direct
union all
select * from indirect
