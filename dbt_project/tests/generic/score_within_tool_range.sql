{#-
    PersScore must be a number inside the score range of its assessment tool (seed
    ref_assessment_tools, keyed by SNOMED concept). Scores of tools not in the seed are left to
    the tool code-list test; blank scores to the not_null test.
-#}
{% test score_within_tool_range(model, column_name, tool_column, tools) %}

{%- set tool = mhsds_column(tool_column) -%}

select m.*
from {{ model }} as m
inner join {{ tools }} as t
    on t.concept_id = m.{{ tool }}
where m.{{ column_name }} is not null
  and (
      {{ mhsds_safe_numeric('m.' ~ column_name) }} is null
      or {{ mhsds_safe_numeric('m.' ~ column_name) }} < t.min_score
      or {{ mhsds_safe_numeric('m.' ~ column_name) }} > t.max_score
  )

{% endtest %}
