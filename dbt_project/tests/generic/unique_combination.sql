{#- The combination of columns is unique (the grain of a finance mart or the key of a seed). -#}
{% test unique_combination(model, columns) %}

{%- set cols = [] -%}
{%- for c in columns %}{% do cols.append(mhsds_column(c)) %}{% endfor %}

select {{ cols | join(', ') }}, count(*) as row_count
from {{ model }}
group by {{ cols | join(', ') }}
having count(*) > 1

{% endtest %}
