-- One row per MIDI-B check of an answer key. The values compared (file_value, answer_value)
-- and the original patient, study, series and instance UIDs of the key are not read.
with results as (
    {{ lake_table('midib_results', {
        'check_passed': 'boolean',
        'check_score': 'double',
        'action': 'varchar',
        'tag': 'varchar',
        'tag_ds': 'varchar',
        'tag_name': 'varchar',
        'modality': 'varchar',
        'class': 'varchar',
    }) }}
)

select
    ingest_day,
    -- The reference results keep the key's brackets: "<uid_changed>".
    trim(action, '<>') as check_name,
    check_passed,
    check_score,
    tag,
    tag_ds as element_path,
    tag_name,
    modality,
    "class" as sop_class_uid
from results
