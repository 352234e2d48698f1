-- MHS201CareContact (mhsds.md 3.6): columns in IDB order with IDB names and types;
-- one row per appointments row, nothing filtered out. Items the EPR does not hold are typed NULLs.

with source as (
    select * from {{ ref('int_care_contacts_split') }}
),

final as (
    select
        cast(care_contact_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareContactID') }},
        cast(service_request_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ServiceRequestID') }},
        cast(contact_date as date) as {{ adapter.quote('CareContDate') }},
        cast(contact_time as time) as {{ adapter.quote('CareContTime') }},
        cast(team_local_id as {{ mhsds_type('varchar') }}) as {{ adapter.quote('OtherCareProfTeamLocalID') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('OrgIDComm') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('AdminCatCode') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('SpecialisedMHServiceCode') }},
        cast(duration_minutes as integer) as {{ adapter.quote('ClinContDurOfCareCont') }},
        cast(consultation_type_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ConsType') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('CareContSubj') }},
        cast(consultation_mechanism_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ConsMechanismMH') }},
        cast(activity_location_type_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('ActLocTypeCode') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('PlaceOfSafetyInd') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('SiteIDOfTreat') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('LanguageCodeTreat') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('InterpreterPresentInd') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('ComPeriMHPartAssessOfferInd') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('PlannedCareContIndicator') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('CareContPatientTherMode') }},
        cast(attendance_status_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('AttendStatus') }},
        {{ mhsds_typed_null('date') }} as {{ adapter.quote('EarliestReasonOfferDate') }},
        {{ mhsds_typed_null('date') }} as {{ adapter.quote('EarliestClinAppDate') }},
        cast(cancelled_date as date) as {{ adapter.quote('CareContCancelDate') }},
        cast(cancellation_reason_code as {{ mhsds_type('varchar') }}) as {{ adapter.quote('CareContCancelReas') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('ReasonableAdjustmentMade') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('ReasonPatientNoIMCA') }},
        {{ mhsds_typed_null('varchar') }} as {{ adapter.quote('ReasonPatientNoIMHA') }}
    from source
)

select * from final
