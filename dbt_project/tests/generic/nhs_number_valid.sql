{#- Non-null NHS numbers must be 10 digits with a valid Modulus 11 check digit. -#}
{% test nhs_number_valid(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} is not null
  and not ({{ mhsds_nhs_number_is_valid(column_name) }})

{% endtest %}
