{#-
    Within a row, column_a must not be after column_b (e.g. referral received <= discharged).
    Optional time_a / time_b break ties on the same date when both times are recorded.
    Rows where either date is NULL pass.
-#}
{% test date_order(model, column_a, column_b, time_a=none, time_b=none) %}

{%- set a = mhsds_column(column_a) -%}
{%- set b = mhsds_column(column_b) -%}

select *
from {{ model }}
where {{ a }} is not null
  and {{ b }} is not null
  and (
      {{ b }} < {{ a }}
      {%- if time_a and time_b %}
      or ({{ b }} = {{ a }} and {{ mhsds_column(time_b) }} < {{ mhsds_column(time_a) }})
      {%- endif %}
  )

{% endtest %}
