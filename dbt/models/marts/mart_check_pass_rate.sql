-- MIDI-B checks over every validated day, per check and modality.
select
    check_name,
    coalesce(nullif(modality, ''), 'unknown') as modality,
    count(*) as checks,
    count(*) filter (where check_passed) as passed,
    count(*) filter (where check_passed) / count(*) as pass_rate,
    count(distinct ingest_day) as days
from {{ ref('stg_validation_results') }}
group by all
