{#- National derived fields (portable: DuckDB and PostgreSQL). NHS England's measure code reads them
    from the national warehouse (menh_bbrb, docs/mhis.md "Derived fields"); these macros build
    them the same way from the published months. -#}

{#- Completed years between a birth date and a date: 17 until the day before the 18th birthday;
    a 29 February birthday turns over on 1 March in other years. -#}
{% macro mhsds_age_years(birth_date, at_date) -%}
    (cast(extract(year from {{ at_date }}) as integer) - cast(extract(year from {{ birth_date }}) as integer)
     - case when cast(extract(month from {{ at_date }}) as integer) * 100 + cast(extract(day from {{ at_date }}) as integer)
                 < cast(extract(month from {{ birth_date }}) as integer) * 100 + cast(extract(day from {{ birth_date }}) as integer)
            then 1 else 0 end)
{%- endmacro %}

{#- NHS financial year of a date, e.g. '2026/27' (Der_FY). -#}
{% macro mhsds_financial_year(date_col) -%}
    (cast(cast(extract(year from {{ date_col }}) as integer)
          - case when cast(extract(month from {{ date_col }}) as integer) < 4 then 1 else 0 end as {{ mhsds_type('varchar') }})
     || '/'
     || right(cast(cast(extract(year from {{ date_col }}) as integer)
                   + case when cast(extract(month from {{ date_col }}) as integer) < 4 then 0 else 1 end as {{ mhsds_type('varchar') }}), 2))
{%- endmacro %}

{#- Person_ID: a pseudonymised person key stable across months and tables. The national key comes
    from NHS number tracing (Master Person Service); here the NHS number when present, else the
    provider's local patient identifier (as NHS England's code does for providers without a
    stable key). Hashed so that the key itself is not an identifier. -#}
{% macro mhsds_person_id(nhs_number, org_id, local_patient_id) -%}
    md5(case when {{ nhs_number }} is not null and trim({{ nhs_number }}) <> ''
             then 'NHS:' || trim({{ nhs_number }})
             else 'LPI:' || {{ org_id }} || ':' || {{ local_patient_id }} end)
{%- endmacro %}

{#- Postcode without spaces, upper case; and its outward code (district) = all but the last 3. -#}
{% macro mhsds_postcode_key(postcode) -%}
    upper(replace({{ postcode }}, ' ', ''))
{%- endmacro %}

{% macro mhsds_postcode_district(postcode) -%}
    left({{ mhsds_postcode_key(postcode) }}, length({{ mhsds_postcode_key(postcode) }}) - 3)
{%- endmacro %}
