-- MHS001MPI (mhsds.md 3.2): columns in IDB order with IDB names and types;
-- one row per patients row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('stg_epr__patients') }}
),

final as (
    select
        cast(local_patient_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('LocalPatientID') }},
        cast({{ mhsds_string_literal(var('org_id_provider')) }} as {{ mhsds_type('varchar') }}) as {{ adapter.quote('OrgIDLocalPatientID') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('OrgIDEduEstab') }},
        cast(nhs_number as {{ mhsds_type('varchar') }}) as {{ adapter.quote('NHSNumber') }},
        cast(nhs_number_status_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('NHSNumberStatus') }},
        cast(birth_date as date) as {{ adapter.quote('PersonBirthDate') }},
        cast(postcode as {{ mhsds_type('varchar') }}) as {{ adapter.quote('Postcode') }},
        cast(gender_identity_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('GenderIDCode') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('GenderSameAtBirth') }},
        cast(stated_gender_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('Gender') }},
        cast(marital_status_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('MaritalStatus') }},
        cast(ethnic_category_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('EthnicCategory') }},
        cast(preferred_language_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('LanguageCodePreferred') }},
        cast({{ mhsds_as_at('death_date', 'date') }} as date) as {{ adapter.quote('PersDeathDate') }}
    from source
)

select * from final
