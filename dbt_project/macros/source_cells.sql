{#-
    raw_epr._cell_errors: the extract's unreadable EPR cells, resolved by the warehouse load to
    the MHSDS row key and rule they break (mhsds_pipeline.warehouse.cell_error_statements). The
    load always creates it; this hook creates it empty when raw_epr was loaded some other way,
    so the not_null tests of mandatory dates (which skip rows listed there: those rows are
    quarantined by the quality gate) and the rules' format checks always find it.
    Columns: mhsds_pipeline.warehouse.CELL_ERROR_COLUMNS.
-#}
{% macro mhsds_ensure_cell_errors() -%}
    create table if not exists raw_epr."_cell_errors" (
        table_name varchar, column_name varchar, rule_id varchar, row_key varchar,
        epr_table varchar, epr_column varchar, problem varchar, row_pseudonym varchar
    )
{%- endmacro %}
