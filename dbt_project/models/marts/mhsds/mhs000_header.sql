-- MHS000Header (mhsds.md 3.1): columns in IDB order with IDB names and types;
-- a single row built from the run's vars.

with final as (
    select
        cast({{ mhsds_string_literal(var('dataset_version')) }} as varchar) as "DatSetVer",
        cast({{ mhsds_string_literal(var('org_id_provider')) }} as varchar) as "OrgIDProvider",
        cast({{ mhsds_string_literal(var('org_id_submit')) }} as varchar) as "OrgIDSubmit",
        cast({{ mhsds_string_literal(var('prim_system_in_use')) }} as varchar) as "PrimSystemInUse",
        cast('{{ mhsds_rp_start() }}' as date) as "ReportingPeriodStartDate",
        cast('{{ mhsds_rp_end() }}' as date) as "ReportingPeriodEndDate",
        cast('{{ mhsds_dataset_created_at() }}' as timestamp) as "DateTimeDatSetCreate"
)

select * from final
