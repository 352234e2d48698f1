{#- The model has exactly `expected` rows (e.g. MHS000Header: exactly one, MHS00025). -#}
{% test row_count_equals(model, expected) %}

select count(*) as row_count
from {{ model }}
having count(*) <> {{ expected }}

{% endtest %}
