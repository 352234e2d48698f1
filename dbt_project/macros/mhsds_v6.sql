{#-
  A table built from NHS England's v6.0 rules file (scripts/v6_tables.py): one MHSDS row per EPR
  row of its source table (the contract's meta.epr_table), columns in the contract's order with
  its IDB names and types. The EPR holds each item under its snake-case name (source/schema_v6.py).
  The staging step is the `staged` CTE (text trimmed, empty text as NULL); the mart casts to the
  contract. Generic on purpose: 47 models share it, so the graph gains one node per table.
-#}
{% macro mhsds_v6_table() -%}
{#- the EPR table is the model name without its mhsNNN_ prefix (= contract meta.epr_table; the
    name is known when dbt parses the model, the contract's meta only when it compiles it) -#}
with source as (
    select * from {{ source('epr_v6', model.name.split('_', 1)[1]) }}
),

staged as (
    select
    {%- for column in model.columns.values() %}
        {{ mhsds_v6_staged(column) }} as {{ mhsds_v6_snake(column.name) }}{{ "," if not loop.last }}
    {%- endfor %}
    from source
),

final as (
    select
    {%- for column in model.columns.values() %}
        cast({{ mhsds_v6_snake(column.name) }} as {{ mhsds_type(column.data_type) }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
    {%- endfor %}
    from staged
)

select * from final
{%- endmacro %}

{#- IDB item name -> EPR column (StartDateMHActLegalStatusClass -> start_date_mh_act_legal_status_class). -#}
{% macro mhsds_v6_snake(name) -%}
    {%- set s = modules.re.sub('([a-z0-9])([A-Z])', '\\1_\\2', name) -%}
    {{- modules.re.sub('([A-Z]+)([A-Z][a-z])', '\\1_\\2', s) | lower -}}
{%- endmacro %}

{% macro mhsds_v6_staged(column) -%}
    {%- set src = mhsds_v6_snake(column.name) -%}
    {%- if column.data_type in ('varchar', 'time') -%}
        nullif(trim(cast({{ src }} as {{ mhsds_type('varchar') }})), '')
    {%- else -%}
        {{ src }}
    {%- endif -%}
{%- endmacro %}
