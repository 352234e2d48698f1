-- Indirect activities with start_at split into IndirectActDate and IndirectActTime. Keeps the EPR
-- key (indirect_activity_id) beside the MHSDS columns so rows can be traced back: MHS204 has no
-- identifier of its own.

with indirect_activities as (
    select * from {{ ref('stg_epr__indirect_activities') }}
),

split as (
    select
        indirect_activities.*,
        {{ mhsds_date_part('activity_start_at') }} as activity_date,
        {{ mhsds_time_part('activity_start_at') }} as activity_time
    from indirect_activities
)

select * from split
