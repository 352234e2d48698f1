-- Hospital spells per submitted month, as NHS England's LOS preparation reads them (menh_bbrb
-- 01_los/los_prep.py 24-91): the spell's record of the month, the month's MPI age
-- (AgeRepPeriodEnd), the ward stay of the same month that ends on the discharge date (its
-- MHAdmittedPatientClass is the bed class) and Hosp_LOS = discharge date - start date in days.

with spell as (
    select * from {{ source('mhsds_published', 'MHS501HospProvSpell') }}
),

referral as (
    select * from {{ ref('der_referral_month') }}
),

discharge_ward as (
    select "UniqMonthID", "HospProvSpellID", "EndDateWardStay",
           min("MHAdmittedPatientClass") as "MHAdmittedPatientClass"
    from {{ source('mhsds_published', 'MHS502WardStay') }}
    where "EndDateWardStay" is not null
    group by "UniqMonthID", "HospProvSpellID", "EndDateWardStay"
)

select
    s."UniqMonthID",
    r."RecordNumber",
    r."Person_ID",
    r."UniqServReqID",
    r."OrgIDProv" || s."HospProvSpellID" as "UniqHospProvSpellID",
    s."StartDateHospProvSpell",
    s."DischDateHospProvSpell",
    w."MHAdmittedPatientClass",
    r."AgeRepPeriodEnd",
    r."Der_FY",
    case when s."DischDateHospProvSpell" is not null
         then {{ dbt.datediff('s."StartDateHospProvSpell"', 's."DischDateHospProvSpell"', 'day') }} end as "Hosp_LOS"
from spell s
join referral r on r."UniqMonthID" = s."UniqMonthID" and r."ServiceRequestID" = s."ServiceRequestID"
left join discharge_ward w
    on w."UniqMonthID" = s."UniqMonthID" and w."HospProvSpellID" = s."HospProvSpellID"
   and w."EndDateWardStay" = s."DischDateHospProvSpell"
