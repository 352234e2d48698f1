-- MHS001MPI (mhsds.md 3.2): columns in IDB order with IDB names and types;
-- one row per patients row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('stg_epr__patients') }}
),

final as (
    select
        cast(local_patient_id as varchar) as "LocalPatientID",
        cast({{ mhsds_string_literal(var('org_id_provider')) }} as varchar) as "OrgIDLocalPatientID",
        {{ mhsds_typed_null('varchar') }} as "OrgIDEduEstab",
        cast(nhs_number as varchar) as "NHSNumber",
        cast(nhs_number_status_code as varchar) as "NHSNumberStatus",
        cast(birth_date as date) as "PersonBirthDate",
        cast(postcode as varchar) as "Postcode",
        cast(gender_identity_code as varchar) as "GenderIDCode",
        {{ mhsds_typed_null('varchar') }} as "GenderSameAtBirth",
        cast(stated_gender_code as varchar) as "Gender",
        cast(marital_status_code as varchar) as "MaritalStatus",
        cast(ethnic_category_code as varchar) as "EthnicCategory",
        cast(preferred_language_code as varchar) as "LanguageCodePreferred",
        cast({{ mhsds_as_at('death_date', 'date') }} as date) as "PersDeathDate"
    from source
)

select * from final
