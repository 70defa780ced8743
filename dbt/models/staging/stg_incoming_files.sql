-- One row per dropped file and ingest day (the incoming_dicom asset's manifest).
{{ lake_table('incoming_dicom', {
    'relpath': 'varchar',
    'kind': 'varchar',
    'size': 'bigint',
    'readable': 'boolean',
    'reason': 'varchar',
    'modality': 'varchar',
    'sop_class_uid': 'varchar',
    'transfer_syntax_uid': 'varchar',
    'number_of_frames': 'integer',
}) }}
