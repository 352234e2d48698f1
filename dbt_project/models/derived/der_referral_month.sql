-- MHS101Referral per submitted month joined to the same month's MPI record (RecordNumber), as
-- NHS England's nhse_pre_proc_referral does (menh_bbrb 02_nhse_pre_processing_tables.py 40-111):
-- UniqServReqID, Person_ID, AgeServReferRecDate, AgeRepPeriodEnd, LADistrictAuth, Der_FY.

with referral as (
    select * from {{ source('mhsds_published', 'MHS101Referral') }}
),

person as (
    select * from {{ ref('der_person_month') }}
)

select
    r."UniqMonthID",
    p."RecordNumber",
    p."Person_ID",
    p."OrgIDProv" || r."ServiceRequestID" as "UniqServReqID",
    r."ServiceRequestID",
    p."OrgIDProv",
    r."LocalPatientID",
    r."CareProfTeamLocalID",
    r."ReferralRequestReceivedDate",
    r."ServDischDate",
    {{ mhsds_age_years('p."PersonBirthDate"', 'r."ReferralRequestReceivedDate"') }} as "AgeServReferRecDate",
    p."AgeRepPeriodEnd",
    p."LADistrictAuth",
    p."GenderIDCode",
    p."GenderSameAtBirth",
    p."Gender",
    p."ReportingPeriodStartDate",
    p."ReportingPeriodEndDate",
    {{ mhsds_financial_year('p."ReportingPeriodStartDate"') }} as "Der_FY"
from referral r
join person p on p."UniqMonthID" = r."UniqMonthID" and p."LocalPatientID" = r."LocalPatientID"
