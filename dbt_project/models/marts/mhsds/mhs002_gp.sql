-- MHS002GP (mhsds.md 3.3): columns in IDB order with IDB names and types;
-- one row per gp_registrations row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('stg_epr__gp_registrations') }}
),

final as (
    select
        cast(local_patient_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('LocalPatientID') }},
        cast(gp_practice_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('GMPReg') }},
        cast(registration_start_date as date) as {{ adapter.quote('StartDateGMPRegistration') }},
        cast({{ mhsds_as_at('registration_end_date', 'date') }} as date) as {{ adapter.quote('EndDateGMPRegistration') }}
    from source
)

select * from final
