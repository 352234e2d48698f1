{#-
    A date or timestamp column must lie in the reporting period given by vars rp_start / rp_end:
    rp_start <= value < rp_end + 1 day (+ days_after_end). NULLs pass (blank checks are separate).
    bound: 'both' (default), 'start' (only "before the RP start" fails) or 'end' (only "after the
    RP end" fails), so each MHSDS rule (e.g. MHS20167 before / MHS20168 after) is its own test.
-#}
{% test date_in_reporting_period(model, column_name, bound='both', days_after_end=0) %}

{%- if bound not in ('both', 'start', 'end') -%}
    {{ exceptions.raise_compiler_error("date_in_reporting_period: bound must be both, start or end (got " ~ bound ~ ")") }}
{%- endif %}

select *
from {{ model }}
where {{ column_name }} is not null
  and (
      {%- if bound in ('both', 'start') %}
      cast({{ column_name }} as timestamp) < cast('{{ mhsds_rp_start_ts() }}' as timestamp)
      {%- endif %}
      {%- if bound == 'both' %} or {% endif %}
      {%- if bound in ('both', 'end') %}
      cast({{ column_name }} as timestamp) >= cast('{{ mhsds_rp_end_exclusive_ts(days_after_end) }}' as timestamp)
      {%- endif %}
  )

{% endtest %}
