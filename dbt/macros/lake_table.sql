{#-
  The pipeline's Parquet files of one `lake` source, read by path: each of `columns` (name: DuckDB
  type) cast to its type, plus the ingest day the file belongs to. `files` is the glob under
  var('data_root'); by default the table's own folder, tables/<table>/<day>.parquet.

  A source that no stage has written yet (a validation that never ran, a partition without pixel
  findings) reads as an empty relation with the same columns, so that every model over it still
  builds; the next build after a file lands reads it. Files from before a column existed read it
  as null (union_by_name).
-#}
{% macro lake_table(table, columns, files=none) %}
  {#- Records the lineage: the model depends on the source, whose asset is the stage that writes it. -#}
  {%- do source('lake', table) -%}
  {%- set location = var('data_root') ~ '/' ~ (files or 'tables/' ~ table ~ '/*.parquet') -%}
  {%- set quoted = "'" ~ (location | replace("'", "''")) ~ "'" -%}
  {%- if execute and lake_has_files(quoted) %}
    select
      {%- for name, type in columns.items() %}
      cast({{ adapter.quote(name) }} as {{ type }}) as {{ adapter.quote(name) }},
      {%- endfor %}
      regexp_extract(filename, '(\d{4}-\d{2}-\d{2})(/[^/]+)?\.parquet$', 1) as ingest_day
    from read_parquet({{ quoted }}, filename = true, union_by_name = true)
  {%- else %}
    select
      {%- for name, type in columns.items() %}
      cast(null as {{ type }}) as {{ adapter.quote(name) }},
      {%- endfor %}
      cast(null as varchar) as ingest_day
    where false
  {%- endif %}
{% endmacro %}


{% macro lake_has_files(quoted_glob) %}
  {%- set found = run_query('select count(*) from glob(' ~ quoted_glob ~ ')') -%}
  {{ return(found.columns[0].values()[0] > 0) }}
{% endmacro %}
