{#- Non-null values must match a regular expression (full match: anchor it with ^ and $). -#}
{% test matches_pattern(model, column_name, pattern, upper=false) %}

{%- set value = 'upper(' ~ column_name ~ ')' if upper else column_name -%}

select *
from {{ model }}
where {{ column_name }} is not null
  and not {{ mhsds_regexp_like(value, pattern) }}

{% endtest %}
