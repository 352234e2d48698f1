-- MHS202 care activities per submitted month with the SNOMED CT procedure split as NHS England's
-- code splits it (menh_bbrb 02_nhse_pre_processing_tables.py 547-554): Der_SNoMEDProcCode = the
-- concept before the first ':', Der_SNoMEDProcQual = the value after the last '=' (if any).

select
    a.{{ adapter.quote('UniqMonthID') }},
    a.{{ adapter.quote('CareActID') }},
    a.{{ adapter.quote('CareContactID') }},
    trim(split_part(a.{{ adapter.quote('Procedure') }}, ':', 1)) as {{ adapter.quote('Der_SNoMEDProcCode') }},
    case when a.{{ adapter.quote('Procedure') }} like '%=%'
         then trim(reverse(split_part(reverse(a.{{ adapter.quote('Procedure') }}), '=', 1))) end as {{ adapter.quote('Der_SNoMEDProcQual') }}
from {{ source('mhsds_published', 'MHS202CareActivity') }} a
where a.{{ adapter.quote('Procedure') }} is not null
