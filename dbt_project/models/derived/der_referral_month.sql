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
    r.{{ adapter.quote('UniqMonthID') }},
    p.{{ adapter.quote('RecordNumber') }},
    p.{{ adapter.quote('Person_ID') }},
    p.{{ adapter.quote('OrgIDProv') }} || r.{{ adapter.quote('ServiceRequestID') }} as {{ adapter.quote('UniqServReqID') }},
    r.{{ adapter.quote('ServiceRequestID') }},
    p.{{ adapter.quote('OrgIDProv') }},
    r.{{ adapter.quote('LocalPatientID') }},
    r.{{ adapter.quote('CareProfTeamLocalID') }},
    r.{{ adapter.quote('ReferralRequestReceivedDate') }},
    r.{{ adapter.quote('ServDischDate') }},
    {{ mhsds_age_years(('p.' ~ adapter.quote('PersonBirthDate')), ('r.' ~ adapter.quote('ReferralRequestReceivedDate'))) }} as {{ adapter.quote('AgeServReferRecDate') }},
    p.{{ adapter.quote('AgeRepPeriodEnd') }},
    p.{{ adapter.quote('LADistrictAuth') }},
    p.{{ adapter.quote('GenderIDCode') }},
    p.{{ adapter.quote('GenderSameAtBirth') }},
    p.{{ adapter.quote('Gender') }},
    p.{{ adapter.quote('ReportingPeriodStartDate') }},
    p.{{ adapter.quote('ReportingPeriodEndDate') }},
    {{ mhsds_financial_year(('p.' ~ adapter.quote('ReportingPeriodStartDate'))) }} as {{ adapter.quote('Der_FY') }}
from referral r
join person p on p.{{ adapter.quote('UniqMonthID') }} = r.{{ adapter.quote('UniqMonthID') }} and p.{{ adapter.quote('LocalPatientID') }} = r.{{ adapter.quote('LocalPatientID') }}
