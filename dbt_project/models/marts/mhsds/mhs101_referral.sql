-- MHS101Referral (mhsds.md 3.4): columns in IDB order with IDB names and types;
-- one row per referrals row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_referrals_split') }}
),

final as (
    select
        cast(service_request_id as varchar) as "ServiceRequestID",
        cast(local_patient_id as varchar) as "LocalPatientID",
        cast(commissioner_org_id as varchar) as "OrgIDComm",
        cast(team_local_id as varchar) as "CareProfTeamLocalID",
        cast(referral_received_date as date) as "ReferralRequestReceivedDate",
        cast(referral_received_time as time) as "ReferralRequestReceivedTime",
        {{ mhsds_typed_null('varchar') }} as "NHSServAgreeLineID",
        {{ mhsds_typed_null('varchar') }} as "SpecialisedMHServiceCode",
        cast(referral_source_code as varchar) as "SourceOfReferralMH",
        {{ mhsds_typed_null('varchar') }} as "OrgIDReferringOrg",
        {{ mhsds_typed_null('varchar') }} as "ReferringCareProfessionalType",
        cast(clinical_priority_code as varchar) as "ClinRespPriorityType",
        cast(primary_reason_code as varchar) as "PrimReasonReferralMH",
        {{ mhsds_typed_null('varchar') }} as "ReasonOAT",
        {{ mhsds_typed_null('date') }} as "DecisionToTreatDate",
        {{ mhsds_typed_null('time') }} as "DecisionToTreatTime",
        {{ mhsds_typed_null('date') }} as "DischPlanCreationDate",
        {{ mhsds_typed_null('time') }} as "DischPlanCreationTime",
        {{ mhsds_typed_null('date') }} as "DischPlanLastUpdatedDate",
        {{ mhsds_typed_null('time') }} as "DischPlanLastUpdatedTime",
        cast(discharge_date as date) as "ServDischDate",
        cast(discharge_time as time) as "ServDischTime",
        cast({{ mhsds_as_at('rejected_date', 'date') }} as date) as "ReferRejectionDate",
        {{ mhsds_typed_null('time') }} as "ReferRejectionTime",
        cast(rejection_reason_code as varchar) as "ReferRejectReason",
        cast(closure_reason_code as varchar) as "ReferClosReason"
    from source
)

select * from final
