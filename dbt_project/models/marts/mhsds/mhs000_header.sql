-- MHS000Header (mhsds.md 3.1): columns in IDB order with IDB names and types;
-- a single row built from the run's vars.

with final as (
    select
        cast({{ mhsds_string_literal(var('dataset_version')) }} as {{ mhsds_type('varchar') }}) as {{ adapter.quote('DatSetVer') }},
        cast({{ mhsds_string_literal(var('org_id_provider')) }} as {{ mhsds_type('varchar') }}) as {{ adapter.quote('OrgIDProvider') }},
        cast({{ mhsds_string_literal(var('org_id_submit')) }} as {{ mhsds_type('varchar') }}) as {{ adapter.quote('OrgIDSubmit') }},
        cast({{ mhsds_string_literal(var('prim_system_in_use')) }} as {{ mhsds_type('varchar') }}) as {{ adapter.quote('PrimSystemInUse') }},
        cast('{{ mhsds_rp_start() }}' as date) as {{ adapter.quote('ReportingPeriodStartDate') }},
        cast('{{ mhsds_rp_end() }}' as date) as {{ adapter.quote('ReportingPeriodEndDate') }},
        cast('{{ mhsds_dataset_created_at() }}' as timestamp) as {{ adapter.quote('DateTimeDatSetCreate') }}
)

select * from final
