-- MHS001MPI per submitted month with the national derived fields: RecordNumber (one person's
-- record in one month), Person_ID, AgeRepPeriodEnd and LADistrictAuth (local authority of
-- residence from the postcode through ref_postcode_la: the full postcode first, else its district).

with mpi as (
    select p.*, m."ReportingPeriodStartDate", m."ReportingPeriodEndDate", m."OrgIDProv"
    from {{ source('mhsds_published', 'MHS001MPI') }} p
    join {{ source('mhsds_published', 'months') }} m on m."UniqMonthID" = p."UniqMonthID"
),

postcode_unit as (
    select postcode, la_code, country_code from {{ ref('ref_postcode_la') }} where level = 'unit'
),

postcode_district as (
    select postcode, la_code, country_code from {{ ref('ref_postcode_la') }} where level = 'district'
)

select
    mpi."UniqMonthID",
    cast(mpi."UniqMonthID" as bigint) * 100000000
        + row_number() over (partition by mpi."UniqMonthID" order by mpi."LocalPatientID") as "RecordNumber",
    {{ mhsds_person_id('mpi."NHSNumber"', 'mpi."OrgIDProv"', 'mpi."LocalPatientID"') }} as "Person_ID",
    mpi."OrgIDProv",
    mpi."LocalPatientID",
    mpi."PersonBirthDate",
    mpi."GenderIDCode",
    mpi."GenderSameAtBirth",
    mpi."Gender",
    {{ mhsds_age_years('mpi."PersonBirthDate"', 'mpi."ReportingPeriodEndDate"') }} as "AgeRepPeriodEnd",
    coalesce(u.la_code, d.la_code) as "LADistrictAuth",
    coalesce(u.country_code, d.country_code) as "Der_ResidenceCountry",
    mpi."ReportingPeriodStartDate",
    mpi."ReportingPeriodEndDate"
from mpi
left join postcode_unit u on u.postcode = {{ mhsds_postcode_key('mpi."Postcode"') }}
left join postcode_district d on d.postcode = {{ mhsds_postcode_district('mpi."Postcode"') }}
