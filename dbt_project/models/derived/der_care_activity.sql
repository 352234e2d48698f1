-- MHS202 care activities per submitted month with the SNOMED CT procedure split as NHS England's
-- code splits it (menh_bbrb 02_nhse_pre_processing_tables.py 547-554): Der_SNoMEDProcCode = the
-- concept before the first ':', Der_SNoMEDProcQual = the value after the last '=' (if any).

select
    a."UniqMonthID",
    a."CareActID",
    a."CareContactID",
    trim(split_part(a."Procedure", ':', 1)) as "Der_SNoMEDProcCode",
    case when a."Procedure" like '%=%'
         then trim(reverse(split_part(reverse(a."Procedure"), '=', 1))) end as "Der_SNoMEDProcQual"
from {{ source('mhsds_published', 'MHS202CareActivity') }} a
where a."Procedure" is not null
