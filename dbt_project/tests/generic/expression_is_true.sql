{#- Rows for which a boolean SQL expression is not true fail (NULL counts as not true). -#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
