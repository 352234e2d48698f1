-- Diagnoses routed to their MHSDS table by the local rank: P -> MHS604PrimDiag,
-- S -> MHS605SecDiag. Keeps the EPR key (diagnosis_id) beside the MHSDS columns so rows can be
-- traced back. A rank outside P/S gets mhsds_table NULL and fails an error-level test rather
-- than being dropped silently.

with diagnoses as (
    select * from {{ ref('stg_epr__diagnoses') }}
),

split as (
    select
        diagnoses.*,
        case diagnoses.diagnosis_rank
            when 'P' then 'mhs604_prim_diag'
            when 'S' then 'mhs605_sec_diag'
        end as mhsds_table
    from diagnoses
)

select * from split
