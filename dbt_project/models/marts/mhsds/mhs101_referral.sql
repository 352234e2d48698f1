-- MHS101Referral (mhsds.md 3.4): columns in IDB order with IDB names and types;
-- one row per referrals row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_referrals_split') }}
),

final as (
    select
        cast(service_request_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServiceRequestID') }},
        cast(local_patient_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('LocalPatientID') }},
        cast(commissioner_org_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('OrgIDComm') }},
        cast(team_local_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareProfTeamLocalID') }},
        cast(referral_received_date as date) as {{ adapter.quote('ReferralRequestReceivedDate') }},
        cast(referral_received_time as time) as {{ adapter.quote('ReferralRequestReceivedTime') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('NHSServAgreeLineID') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('SpecialisedMHServiceCode') }},
        cast(referral_source_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('SourceOfReferralMH') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('OrgIDReferringOrg') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('ReferringCareProfessionalType') }},
        cast(clinical_priority_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ClinRespPriorityType') }},
        cast(primary_reason_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('PrimReasonReferralMH') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('ReasonOAT') }},
        {{ mhsds_typed_null('date') }} as {{ adapter.quote('DecisionToTreatDate') }},
        {{ mhsds_typed_null('time') }} as {{ adapter.quote('DecisionToTreatTime') }},
        {{ mhsds_typed_null('date') }} as {{ adapter.quote('DischPlanCreationDate') }},
        {{ mhsds_typed_null('time') }} as {{ adapter.quote('DischPlanCreationTime') }},
        {{ mhsds_typed_null('date') }} as {{ adapter.quote('DischPlanLastUpdatedDate') }},
        {{ mhsds_typed_null('time') }} as {{ adapter.quote('DischPlanLastUpdatedTime') }},
        cast(discharge_date as date) as {{ adapter.quote('ServDischDate') }},
        cast(discharge_time as time) as {{ adapter.quote('ServDischTime') }},
        cast({{ mhsds_as_at('rejected_date', 'date') }} as date) as {{ adapter.quote('ReferRejectionDate') }},
        {{ mhsds_typed_null('time') }} as {{ adapter.quote('ReferRejectionTime') }},
        cast(rejection_reason_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ReferRejectReason') }},
        cast(closure_reason_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ReferClosReason') }}
    from source
)

select * from final
