-- MHS201CareContact (mhsds.md 3.6): columns in IDB order with IDB names and types;
-- one row per appointments row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_care_contacts_split') }}
),

final as (
    select
        cast(care_contact_id as varchar) as "CareContactID",
        cast(service_request_id as varchar) as "ServiceRequestID",
        cast(contact_date as date) as "CareContDate",
        cast(contact_time as time) as "CareContTime",
        cast(team_local_id as varchar) as "OtherCareProfTeamLocalID",
        {{ mhsds_typed_null('varchar') }} as "OrgIDComm",
        {{ mhsds_typed_null('varchar') }} as "AdminCatCode",
        {{ mhsds_typed_null('varchar') }} as "SpecialisedMHServiceCode",
        cast(duration_minutes as integer) as "ClinContDurOfCareCont",
        cast(consultation_type_code as varchar) as "ConsType",
        {{ mhsds_typed_null('varchar') }} as "CareContSubj",
        cast(consultation_mechanism_code as varchar) as "ConsMechanismMH",
        cast(activity_location_type_code as varchar) as "ActLocTypeCode",
        {{ mhsds_typed_null('varchar') }} as "PlaceOfSafetyInd",
        {{ mhsds_typed_null('varchar') }} as "SiteIDOfTreat",
        {{ mhsds_typed_null('varchar') }} as "LanguageCodeTreat",
        {{ mhsds_typed_null('varchar') }} as "InterpreterPresentInd",
        {{ mhsds_typed_null('varchar') }} as "ComPeriMHPartAssessOfferInd",
        {{ mhsds_typed_null('varchar') }} as "PlannedCareContIndicator",
        {{ mhsds_typed_null('varchar') }} as "CareContPatientTherMode",
        cast(attendance_status_code as varchar) as "AttendStatus",
        {{ mhsds_typed_null('date') }} as "EarliestReasonOfferDate",
        {{ mhsds_typed_null('date') }} as "EarliestClinAppDate",
        cast(cancelled_date as date) as "CareContCancelDate",
        cast(cancellation_reason_code as varchar) as "CareContCancelReas",
        {{ mhsds_typed_null('varchar') }} as "ReasonableAdjustmentMade",
        {{ mhsds_typed_null('varchar') }} as "ReasonPatientNoIMCA",
        {{ mhsds_typed_null('varchar') }} as "ReasonPatientNoIMHA"
    from source
)

select * from final
