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
    select {{ adapter.quote('UniqMonthID') }}, {{ adapter.quote('LocalPatientID') }}, {{ adapter.quote('PersonBirthDate') }} from {{ ref('der_person_month') }}
),

codes as (
    select code_list, cast(code as {{ mhsds_type('varchar') }}) as code, cast(valid_from as date) as valid_from,
           cast(nullif(cast(valid_to as {{ mhsds_type('varchar') }}), '') as date) as valid_to
    from {{ ref('ref_ltp_metric_code') }}
    where metric_id = 'Der_DirectContact'
),

direct as (
    select
        c.{{ adapter.quote('UniqMonthID') }},
        r.{{ adapter.quote('RecordNumber') }},
        r.{{ adapter.quote('Person_ID') }},
        r.{{ adapter.quote('UniqServReqID') }},
        'DIRECT' as {{ adapter.quote('Der_ActivityType') }},
        r.{{ adapter.quote('OrgIDProv') }} || c.{{ adapter.quote('CareContactID') }} as {{ adapter.quote('Der_ActivityUniqID') }},
        c.{{ adapter.quote('CareContactID') }},
        c.{{ adapter.quote('CareContDate') }} as {{ adapter.quote('Der_ContactDate') }},
        c.{{ adapter.quote('CareContTime') }} as {{ adapter.quote('Der_ContactTime') }},
        coalesce(c.{{ adapter.quote('OtherCareProfTeamLocalID') }}, r.{{ adapter.quote('CareProfTeamLocalID') }}) as {{ adapter.quote('TeamLocalID') }},
        c.{{ adapter.quote('AttendStatus') }},
        c.{{ adapter.quote('ConsMechanismMH') }},
        case when exists (select 1 from codes a where a.code_list = 'attend_status' and a.code = c.{{ adapter.quote('AttendStatus') }}
                            and r.{{ adapter.quote('ReportingPeriodStartDate') }} >= a.valid_from
                            and (a.valid_to is null or r.{{ adapter.quote('ReportingPeriodStartDate') }} <= a.valid_to))
                  and exists (select 1 from codes m where m.code_list = 'cons_mechanism' and m.code = c.{{ adapter.quote('ConsMechanismMH') }}
                            and r.{{ adapter.quote('ReportingPeriodStartDate') }} >= m.valid_from
                            and (m.valid_to is null or r.{{ adapter.quote('ReportingPeriodStartDate') }} <= m.valid_to))
             then true else false end as {{ adapter.quote('Der_DirectContact') }},
        {{ mhsds_age_years(('p.' ~ adapter.quote('PersonBirthDate')), ('c.' ~ adapter.quote('CareContDate'))) }} as {{ adapter.quote('AgeCareContDate') }},
        cast(null as {{ mhsds_type('varchar') }}) as {{ adapter.quote('Der_IndActProcCode') }}
    from {{ source('mhsds_published', 'MHS201CareContact') }} c
    join referral r on r.{{ adapter.quote('UniqMonthID') }} = c.{{ adapter.quote('UniqMonthID') }} and r.{{ adapter.quote('ServiceRequestID') }} = c.{{ adapter.quote('ServiceRequestID') }}
    join person p on p.{{ adapter.quote('UniqMonthID') }} = r.{{ adapter.quote('UniqMonthID') }} and p.{{ adapter.quote('LocalPatientID') }} = r.{{ adapter.quote('LocalPatientID') }}
),

indirect as (
    select
        i.{{ adapter.quote('UniqMonthID') }},
        r.{{ adapter.quote('RecordNumber') }},
        r.{{ adapter.quote('Person_ID') }},
        r.{{ adapter.quote('UniqServReqID') }},
        'INDIRECT' as {{ adapter.quote('Der_ActivityType') }},
        r.{{ adapter.quote('OrgIDProv') }} || i.{{ adapter.quote('ServiceRequestID') }} || ':' || cast(i.{{ adapter.quote('IndirectActDate') }} as {{ mhsds_type('varchar') }}) || ':'
            || coalesce(cast(i.{{ adapter.quote('IndirectActTime') }} as {{ mhsds_type('varchar') }}), '') || ':'
            || cast(row_number() over (partition by i.{{ adapter.quote('UniqMonthID') }}, i.{{ adapter.quote('ServiceRequestID') }}, i.{{ adapter.quote('IndirectActDate') }},
                                                    i.{{ adapter.quote('IndirectActTime') }} order by i.{{ adapter.quote('OtherCareProfTeamLocalID') }}) as {{ mhsds_type('varchar') }})
            as {{ adapter.quote('Der_ActivityUniqID') }},
        cast(null as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareContactID') }},
        i.{{ adapter.quote('IndirectActDate') }} as {{ adapter.quote('Der_ContactDate') }},
        i.{{ adapter.quote('IndirectActTime') }} as {{ adapter.quote('Der_ContactTime') }},
        coalesce(i.{{ adapter.quote('OtherCareProfTeamLocalID') }}, r.{{ adapter.quote('CareProfTeamLocalID') }}) as {{ adapter.quote('TeamLocalID') }},
        cast(null as {{ mhsds_type('varchar') }}) as {{ adapter.quote('AttendStatus') }},
        cast(null as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ConsMechanismMH') }},
        false as {{ adapter.quote('Der_DirectContact') }},
        cast(null as integer) as {{ adapter.quote('AgeCareContDate') }},
        nullif(trim(split_part(i.{{ adapter.quote('IndActProcedure') }}, ':', 1)), '') as {{ adapter.quote('Der_IndActProcCode') }}
    from {{ source('mhsds_published', 'MHS204IndirectActivity') }} i
    join referral r on r.{{ adapter.quote('UniqMonthID') }} = i.{{ adapter.quote('UniqMonthID') }} and r.{{ adapter.quote('ServiceRequestID') }} = i.{{ adapter.quote('ServiceRequestID') }}
)

select * from direct
union all
select * from indirect
