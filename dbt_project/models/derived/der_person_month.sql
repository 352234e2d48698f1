-- MHS001MPI per submitted month with the national derived fields: RecordNumber (one person's
-- record in one month), Person_ID, AgeRepPeriodEnd and LADistrictAuth (local authority of
-- residence from the postcode through ref_postcode_la: the full postcode first, else its district).

with mpi as (
    select p.*, m.{{ adapter.quote('ReportingPeriodStartDate') }}, m.{{ adapter.quote('ReportingPeriodEndDate') }}, m.{{ adapter.quote('OrgIDProv') }}
    from {{ source('mhsds_published', 'MHS001MPI') }} p
    join {{ source('mhsds_published', 'months') }} m on m.{{ adapter.quote('UniqMonthID') }} = p.{{ adapter.quote('UniqMonthID') }}
),

postcode_unit as (
    select postcode, la_code, country_code from {{ ref('ref_postcode_la') }} where level = 'unit'
),

postcode_district as (
    select postcode, la_code, country_code from {{ ref('ref_postcode_la') }} where level = 'district'
)

select
    mpi.{{ adapter.quote('UniqMonthID') }},
    cast(mpi.{{ adapter.quote('UniqMonthID') }} as bigint) * 100000000
        + row_number() over (partition by mpi.{{ adapter.quote('UniqMonthID') }} order by mpi.{{ adapter.quote('LocalPatientID') }}) as {{ adapter.quote('RecordNumber') }},
    {{ mhsds_person_id(('mpi.' ~ adapter.quote('NHSNumber')), ('mpi.' ~ adapter.quote('OrgIDProv')), ('mpi.' ~ adapter.quote('LocalPatientID'))) }} as {{ adapter.quote('Person_ID') }},
    mpi.{{ adapter.quote('OrgIDProv') }},
    mpi.{{ adapter.quote('LocalPatientID') }},
    mpi.{{ adapter.quote('PersonBirthDate') }},
    mpi.{{ adapter.quote('GenderIDCode') }},
    mpi.{{ adapter.quote('GenderSameAtBirth') }},
    mpi.{{ adapter.quote('Gender') }},
    {{ mhsds_age_years(('mpi.' ~ adapter.quote('PersonBirthDate')), ('mpi.' ~ adapter.quote('ReportingPeriodEndDate'))) }} as {{ adapter.quote('AgeRepPeriodEnd') }},
    coalesce(u.la_code, d.la_code) as {{ adapter.quote('LADistrictAuth') }},
    coalesce(u.country_code, d.country_code) as {{ adapter.quote('Der_ResidenceCountry') }},
    mpi.{{ adapter.quote('ReportingPeriodStartDate') }},
    mpi.{{ adapter.quote('ReportingPeriodEndDate') }}
from mpi
left join postcode_unit u on u.postcode = {{ mhsds_postcode_key(('mpi.' ~ adapter.quote('Postcode'))) }}
left join postcode_district d on d.postcode = {{ mhsds_postcode_district(('mpi.' ~ adapter.quote('Postcode'))) }}
