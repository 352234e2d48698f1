{#-
    Nothing is dropped or duplicated between layers: the model has exactly as many rows as the
    compared model (optionally filtered). Returns one row when the counts differ.
-#}
{% test row_count_matches(model, compare_model, compare_filter=none) %}

with model_rows as (
    select count(*) as n from {{ model }}
),

compare_rows as (
    select count(*) as n from {{ compare_model }}
    {%- if compare_filter %}
    where {{ compare_filter }}
    {%- endif %}
)

select model_rows.n as model_row_count, compare_rows.n as compare_row_count
from model_rows
cross join compare_rows
where model_rows.n <> compare_rows.n

{% endtest %}
