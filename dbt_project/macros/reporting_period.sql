{#-
    Reporting-period and header values, read from the vars the pipeline passes (--vars).
    Each macro validates its input so a bad value stops the run with a message saying which var
    to fix, instead of a cast error deep inside a model.
-#}

{% macro mhsds_parse_date_var(name) -%}
    {%- set value = (var(name) | string) | trim -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value) -%}
        {{ exceptions.raise_compiler_error(
            "var '" ~ name ~ "' must be a date 'YYYY-MM-DD' (got '" ~ value ~ "'). Pass it with "
            ~ "--vars '{rp_start: 2026-10-01, rp_end: 2026-10-31, ...}'.") }}
    {%- endif -%}
    {{ return(modules.datetime.datetime.strptime(value, '%Y-%m-%d')) }}
{%- endmacro %}

{% macro mhsds_rp_bounds() -%}
    {%- set start = mhsds_parse_date_var('rp_start') -%}
    {%- set end = mhsds_parse_date_var('rp_end') -%}
    {%- if end < start -%}
        {{ exceptions.raise_compiler_error(
            "var rp_end (" ~ end.strftime('%Y-%m-%d') ~ ") is before rp_start ("
            ~ start.strftime('%Y-%m-%d') ~ "): pass the first and last day of the reporting month.") }}
    {%- endif -%}
    {{ return({'start': start, 'end': end, 'end_exclusive': end + modules.datetime.timedelta(days=1)}) }}
{%- endmacro %}

{#- 'YYYY-MM-DD' strings, for SQL literals -#}
{% macro mhsds_rp_start() -%}{{ return(mhsds_rp_bounds()['start'].strftime('%Y-%m-%d')) }}{%- endmacro %}
{% macro mhsds_rp_end() -%}{{ return(mhsds_rp_bounds()['end'].strftime('%Y-%m-%d')) }}{%- endmacro %}

{#- Midnight after rp_end, plus `days` extra days: "in the RP" means rp_start <= ts < this. -#}
{% macro mhsds_rp_end_exclusive_ts(days=0) -%}
    {%- set ts = mhsds_rp_bounds()['end_exclusive'] + modules.datetime.timedelta(days=days) -%}
    {{ return(ts.strftime('%Y-%m-%d %H:%M:%S')) }}
{%- endmacro %}

{% macro mhsds_rp_start_ts() -%}{{ return(mhsds_rp_start() ~ ' 00:00:00') }}{%- endmacro %}

{#- DateTimeDatSetCreate: the var if given, else midnight after rp_end (deterministic). -#}
{% macro mhsds_dataset_created_at() -%}
    {%- set value = (var('dataset_created_at', '') or '') | string | trim -%}
    {%- if value == '' -%}
        {{ return(mhsds_rp_end_exclusive_ts()) }}
    {%- endif -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}$', value) -%}
        {{ exceptions.raise_compiler_error(
            "var 'dataset_created_at' must be 'YYYY-MM-DD HH:MM:SS' (got '" ~ value ~ "').") }}
    {%- endif -%}
    {{ return(value | replace('T', ' ')) }}
{%- endmacro %}

{#-
    "As at the end of the reporting period": a past month is rebuilt from today's EPR, which
    already knows later events (a discharge next month). MHSDS for that month must show what
    was true at RP end, so an event timestamp/date after RP end becomes NULL (not yet happened).
-#}
{% macro mhsds_as_at(expr, kind='timestamp') -%}
    {%- if kind == 'date' -%}
    case when cast({{ expr }} as date) > cast('{{ mhsds_rp_end() }}' as date) then null else {{ expr }} end
    {%- else -%}
    case when cast({{ expr }} as timestamp) >= cast('{{ mhsds_rp_end_exclusive_ts() }}' as timestamp)
        then null else {{ expr }} end
    {%- endif -%}
{%- endmacro %}
