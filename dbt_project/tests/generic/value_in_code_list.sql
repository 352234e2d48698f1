{#-
    Non-null values of the column must be codes of a reference seed (a national code list).
    `categories` optionally restricts the accepted codes to some VODIM categories of the seed
    (valid / other / default), e.g. to flag default codes such as ethnic category 99.
-#}
{% test value_in_code_list(model, column_name, code_list, code_column='code', categories=none) %}

select m.*
from {{ model }} as m
where m.{{ column_name }} is not null
  and not exists (
      select 1
      from {{ code_list }} as c
      where c.{{ code_column }} = m.{{ column_name }}
      {%- if categories %}
        and c.vodim_category in ({% for category in categories %}'{{ category }}'{{ ', ' if not loop.last }}{% endfor %})
      {%- endif %}
  )

{% endtest %}
