{#-
    One dbt project, three engines: DuckDB (default), PostgreSQL and Spark (dbt-spark, `session`
    method). The models and contracts are written in the DuckDB / PostgreSQL dialect, which the
    two share; what Spark spells differently goes through adapter.dispatch here, so the DuckDB
    and PostgreSQL SQL compiles exactly as before (every default__ below is the identity).

    Spark differences handled:
      * types: `varchar` needs a length in Spark (string instead), `integer` is `int`,
        `numeric(p,s)` is `decimal(p,s)`, `text` is `string`, `double precision`
        is `double`; `time` is Spark's TIME(6) (Spark >= 4.1
        with spark.sql.timeType.enabled, set by the profile);
      * quoted identifiers: always adapter.quote (backticks on Spark), never literal double quotes;
      * string literals: Spark reads backslash escapes and has no '' escape;
      * contracts: dbt's empty-schema query casts each contract data_type with dbt.cast, so a
        spark__cast mapping the contract's types lets the same YAML contracts be enforced;
      * dbt-spark forces ANSI mode off, so "Name" is a string there, never an identifier;
      * day differences: dbt.datediff gives a bigint on DuckDB, an int on Spark (mhsds_days_between);
      * seeds: dbt-spark's seed DDL and inserts take column_types verbatim and bind values as
        unescaped quoted text (NULL becomes 'None'); the spark__ seed macros below map the types
        and render literals themselves.
-#}

{#- A contract / warehouse type name as the target spells it. -#}
{% macro mhsds_type(data_type) -%}
    {{- return(adapter.dispatch('mhsds_type', 'mhsds')(data_type)) -}}
{%- endmacro %}

{% macro default__mhsds_type(data_type) -%}
    {{- return(data_type) -}}
{%- endmacro %}

{% macro spark__mhsds_type(data_type) -%}
    {%- set t = (data_type | string) | trim -%}
    {%- set lower = t | lower -%}
    {%- if lower in ('varchar', 'text') or lower.startswith('varchar(') or lower.startswith('character varying') -%}
        {{- return('string') -}}
    {%- elif lower == 'integer' -%}
        {{- return('int') -}}
    {%- elif lower == 'double precision' -%}
        {{- return('double') -}}
    {%- elif lower.startswith('numeric') -%}
        {{- return('decimal' ~ t[7:]) -}}
    {%- else -%}
        {{- return(t) -}}
    {%- endif -%}
{%- endmacro %}

{#- dbt.cast on Spark: the contract's types mapped (dbt's contract check casts NULL to each
    YAML data_type with dbt.cast; the root project's spark__cast is found before dbt's). -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ mhsds_type(type) }})
{%- endmacro %}

{#- A string literal from a Jinja value. -#}
{% macro mhsds_quote_string(value) -%}
    {{- return(adapter.dispatch('mhsds_quote_string', 'mhsds')(value)) -}}
{%- endmacro %}

{% macro default__mhsds_quote_string(value) -%}
    '{{ (value | string) | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__mhsds_quote_string(value) -%}
    '{{ (value | string) | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{#- Seeds on Spark: dbt-spark's own macros with the column types mapped and values rendered as
    escaped literals (NULL for an empty cell) instead of driver bindings. -#}
{% macro spark__create_csv_table(model, agate_table) %}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set quote_seed_column = model['config'].get('quote_columns', None) -%}

  {% set sql %}
    create table {{ this.render() }} (
        {%- for col_name in agate_table.column_names -%}
            {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
            {%- set type = mhsds_type(column_override.get(col_name, inferred_type)) -%}
            {%- set column_name = (col_name | string) -%}
            {{ adapter.quote_seed_column(column_name, quote_seed_column) }} {{ type }} {%- if not loop.last -%}, {%- endif -%}
        {%- endfor -%}
    )
    {{ file_format_clause() }}
    {{ partition_cols(label="partitioned by") }}
    {{ clustered_cols(label="clustered by") }}
    {{ location_clause() }}
    {{ comment_clause() }}
  {% endset %}

  {% call statement('_') -%}
    {{ sql }}
  {%- endcall %}

  {{ return(sql) }}
{% endmacro %}

{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set batch_size = get_batch_size() -%}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set types = [] -%}
  {%- for col_name in agate_table.column_names -%}
      {%- do types.append(mhsds_type(column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)))) -%}
  {%- endfor -%}
  {%- set statements = [] -%}
  {%- for chunk in agate_table.rows | batch(batch_size) -%}
      {%- set sql -%}
          insert into {{ this.render() }} values
          {% for row in chunk -%}
              ({%- for value in row -%}
                  {%- if value is none -%}cast(null as {{ types[loop.index0] }})
                  {%- else -%}cast({{ mhsds_quote_string(value) }} as {{ types[loop.index0] }})
                  {%- endif -%}{%- if not loop.last %},{% endif -%}
              {%- endfor -%})
              {%- if not loop.last %},{% endif %}
          {% endfor %}
      {%- endset -%}
      {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
      {%- if loop.index0 == 0 -%}{%- do statements.append(sql) -%}{%- endif -%}
  {%- endfor -%}
  {{ return(statements[0] if statements else '') }}
{% endmacro %}

{#- Whole days from `start_date` to `end_date` as a bigint on every engine (dbt.datediff, whose
    day difference is a bigint on DuckDB, an int on Spark). -#}
{% macro mhsds_days_between(start_date, end_date) -%}
    {{- return(adapter.dispatch('mhsds_days_between', 'mhsds')(start_date, end_date)) -}}
{%- endmacro %}

{% macro default__mhsds_days_between(start_date, end_date) -%}
    {{- return(dbt.datediff(start_date, end_date, 'day')) -}}
{%- endmacro %}

{% macro spark__mhsds_days_between(start_date, end_date) -%}
    cast(datediff(cast({{ end_date }} as date), cast({{ start_date }} as date)) as bigint)
{%- endmacro %}
