-- MHS102OtherServiceType (mhsds.md 3.5): columns in IDB order with IDB names and types;
-- one row per referral_teams row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('stg_epr__referral_teams') }}
),

final as (
    select
        cast(service_request_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServiceRequestID') }},
        cast(team_local_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('OtherCareProfTeamLocalID') }},
        cast({{ mhsds_as_at('closed_date', 'date') }} as date) as {{ adapter.quote('ReferClosureDate') }},
        {{ mhsds_typed_null('time') }} as {{ adapter.quote('ReferClosureTime') }},
        cast({{ mhsds_as_at('rejected_date', 'date') }} as date) as {{ adapter.quote('ReferRejectionDate') }},
        {{ mhsds_typed_null('time') }} as {{ adapter.quote('ReferRejectionTime') }},
        cast(closure_reason_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ReferClosReason') }},
        cast(rejection_reason_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ReferRejectReason') }}
    from source
)

select * from final
