-- Referrals with received / discharge timestamps split into the MHSDS date and time items.

with referrals as (
    select * from {{ ref('stg_epr__referrals') }}
),

split as (
    select
        referrals.*,
        {{ mhsds_date_part('referral_received_at') }} as referral_received_date,
        {{ mhsds_time_part('referral_received_at') }} as referral_received_time,
        {{ mhsds_date_part(mhsds_as_at('discharged_at')) }} as discharge_date,
        {{ mhsds_time_part(mhsds_as_at('discharged_at')) }} as discharge_time
    from referrals
)

select * from split
