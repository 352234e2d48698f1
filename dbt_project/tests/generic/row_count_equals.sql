{#- The model has exactly `expected` rows (e.g. the header model builds exactly one row from the run's vars). -#}
{% test row_count_equals(model, expected) %}

select count(*) as row_count
from {{ model }}
having count(*) <> {{ expected }}

{% endtest %}
