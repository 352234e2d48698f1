{#- Small portable SQL helpers (DuckDB, PostgreSQL and Spark: types through mhsds_type, cross_db.sql). -#}

{#- A varchar literal from a Jinja value, with quotes escaped. -#}
{% macro mhsds_string_literal(value) -%}
    {{ mhsds_quote_string(value) }}
{%- endmacro %}

{#- Staging: EPR strings are trimmed (IDB-era sources padded text with spaces). -#}
{% macro mhsds_clean_string(column) -%}
    trim(cast({{ column }} as {{ mhsds_type('varchar') }}))
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
    cast(null as {{ mhsds_type(data_type) }})
{%- endmacro %}

{#- Quote a column name unless it is already quoted (tests get quoted names for quote: true columns). -#}
{% macro mhsds_column(name) -%}
    {%- if name.startswith('"') or name.startswith('`') -%}{{ name }}{%- else -%}{{ adapter.quote(name) }}{%- endif -%}
{%- endmacro %}
