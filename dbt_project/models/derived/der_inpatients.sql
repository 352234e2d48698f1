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
    select {{ adapter.quote('UniqMonthID') }}, {{ adapter.quote('HospProvSpellID') }}, {{ adapter.quote('EndDateWardStay') }},
           min({{ adapter.quote('MHAdmittedPatientClass') }}) as {{ adapter.quote('MHAdmittedPatientClass') }}
    from {{ source('mhsds_published', 'MHS502WardStay') }}
    where {{ adapter.quote('EndDateWardStay') }} is not null
    group by {{ adapter.quote('UniqMonthID') }}, {{ adapter.quote('HospProvSpellID') }}, {{ adapter.quote('EndDateWardStay') }}
)

select
    s.{{ adapter.quote('UniqMonthID') }},
    r.{{ adapter.quote('RecordNumber') }},
    r.{{ adapter.quote('Person_ID') }},
    r.{{ adapter.quote('UniqServReqID') }},
    r.{{ adapter.quote('OrgIDProv') }} || s.{{ adapter.quote('HospProvSpellID') }} as {{ adapter.quote('UniqHospProvSpellID') }},
    s.{{ adapter.quote('StartDateHospProvSpell') }},
    s.{{ adapter.quote('DischDateHospProvSpell') }},
    w.{{ adapter.quote('MHAdmittedPatientClass') }},
    r.{{ adapter.quote('AgeRepPeriodEnd') }},
    r.{{ adapter.quote('Der_FY') }},
    case when s.{{ adapter.quote('DischDateHospProvSpell') }} is not null
         then {{ mhsds_days_between('s.' ~ adapter.quote('StartDateHospProvSpell'), 's.' ~ adapter.quote('DischDateHospProvSpell')) }} end as {{ adapter.quote('Hosp_LOS') }}
from spell s
join referral r on r.{{ adapter.quote('UniqMonthID') }} = s.{{ adapter.quote('UniqMonthID') }} and r.{{ adapter.quote('ServiceRequestID') }} = s.{{ adapter.quote('ServiceRequestID') }}
left join discharge_ward w
    on w.{{ adapter.quote('UniqMonthID') }} = s.{{ adapter.quote('UniqMonthID') }} and w.{{ adapter.quote('HospProvSpellID') }} = s.{{ adapter.quote('HospProvSpellID') }}
   and w.{{ adapter.quote('EndDateWardStay') }} = s.{{ adapter.quote('DischDateHospProvSpell') }}
