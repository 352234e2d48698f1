{#- The combination of columns is unique (MHSDS compound keys, e.g. MHS002, MHS102, MHS604). -#}
{% test unique_combination(model, columns) %}

{%- set cols = [] -%}
{%- for c in columns %}{% do cols.append(mhsds_column(c)) %}{% endfor %}

select {{ cols | join(', ') }}, count(*) as row_count
from {{ model }}
group by {{ cols | join(', ') }}
having count(*) > 1

{% endtest %}
