-- The nightly runs over time: rates per day and their average over the last seven runs.
with rates as (
    select
        ingest_day,
        files_dropped,
        files_deidentified,
        case when files_deidentified + files_not_deidentified > 0
             then files_not_deidentified / (files_deidentified + files_not_deidentified) end
            as quarantine_rate,
        case when files_deidentified > 0 then phi_boxes / files_deidentified end
            as phi_boxes_per_file,
        validation_pass_rate
    from {{ ref('mart_partition_summary') }}
)

select
    *,
    avg(quarantine_rate) over last_seven as quarantine_rate_7_runs,
    avg(validation_pass_rate) over last_seven as validation_pass_rate_7_runs
from rates
window last_seven as (order by ingest_day rows between 6 preceding and current row)
