-- MHS604PrimDiag (mhsds.md 3.10): columns in IDB order with IDB names and types;
-- one row per diagnoses row routed here, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_diagnoses_split') }}
    where mhsds_table = 'mhs604_prim_diag'
),

final as (
    select
        cast(service_request_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServiceRequestID') }},
        cast(diagnosis_scheme_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('DiagSchemeInUse') }},
        cast(diagnosis_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('PrimDiag') }},
        cast(diagnosed_at as timestamp) as {{ adapter.quote('CodedDiagTimestamp') }}
    from source
)

select * from final
