{#- Small portable SQL helpers (DuckDB and PostgreSQL). -#}

{#- A varchar literal from a Jinja value, with quotes escaped. -#}
{% macro mhsds_string_literal(value) -%}
    '{{ (value | string) | replace("'", "''") }}'
{%- endmacro %}

{#- Staging: EPR strings are trimmed (IDB-era sources padded text with spaces). -#}
{% macro mhsds_clean_string(column) -%}
    trim(cast({{ column }} as varchar))
{%- endmacro %}

{#- Date and time parts of a timestamp, for the MHSDS *Date / *Time item pairs. -#}
{% macro mhsds_date_part(column) -%}
    cast({{ column }} as date)
{%- endmacro %}

{% macro mhsds_time_part(column) -%}
    cast({{ column }} as time)
{%- endmacro %}

{#- A typed NULL for IDB items the EPR has no source for. -#}
{% macro mhsds_typed_null(data_type) -%}
    cast(null as {{ data_type }})
{%- endmacro %}

{#- Quote a column name unless it is already quoted (tests get quoted names for quote: true columns). -#}
{% macro mhsds_column(name) -%}
    {%- if name.startswith('"') -%}{{ name }}{%- else -%}{{ adapter.quote(name) }}{%- endif -%}
{%- endmacro %}

{#- Full-string regular-expression match. -#}
{% macro mhsds_regexp_like(expression, pattern) -%}
    {{ return(adapter.dispatch('mhsds_regexp_like', 'mhsds')(expression, pattern)) }}
{%- endmacro %}

{% macro default__mhsds_regexp_like(expression, pattern) -%}
    ({{ expression }} ~ '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{% macro duckdb__mhsds_regexp_like(expression, pattern) -%}
    regexp_matches({{ expression }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}

{#- Text to numeric, NULL when the text is not a number (no cast error on dirty data). -#}
{% macro mhsds_safe_numeric(expression) -%}
    {{ return(adapter.dispatch('mhsds_safe_numeric', 'mhsds')(expression)) }}
{%- endmacro %}

{% macro default__mhsds_safe_numeric(expression) -%}
    case when {{ mhsds_regexp_like('trim(' ~ expression ~ ')', '^-?[0-9]+(\.[0-9]+)?$') }}
         then cast(trim({{ expression }}) as numeric) end
{%- endmacro %}

{% macro duckdb__mhsds_safe_numeric(expression) -%}
    try_cast(trim({{ expression }}) as decimal(18, 3))
{%- endmacro %}

{#-
    NHS number check (NHS Data Dictionary, as implemented by NHS England's validation library,
    mhsds.md 5.4): 10 digits; weights 10..2 on the first nine; r = sum mod 11;
    check digit = 11 - r, where 11 -> 0 and 10 (r = 1) is never valid.
-#}
{% macro mhsds_nhs_number_is_valid(expression) -%}
    case when {{ mhsds_regexp_like(expression, '^[0-9]{10}$') }} then
        (
            (
                {%- for i in range(1, 10) %}
                cast(substring({{ expression }} from {{ i }} for 1) as integer) * {{ 11 - i }}{{ ' +' if not loop.last }}
                {%- endfor %}
            ) % 11 <> 1
            and (11 - (
                {%- for i in range(1, 10) %}
                cast(substring({{ expression }} from {{ i }} for 1) as integer) * {{ 11 - i }}{{ ' +' if not loop.last }}
                {%- endfor %}
            ) % 11) % 11 = cast(substring({{ expression }} from 10 for 1) as integer)
        )
    else false end
{%- endmacro %}
