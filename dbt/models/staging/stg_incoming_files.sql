-- One row per dropped file and ingest day (the incoming_dicom asset's manifest).
select
    regexp_extract(filename, '(\d{4}-\d{2}-\d{2})\.parquet$', 1) as ingest_day,
    relpath,
    kind,
    size,
    readable,
    reason,
    modality,
    sop_class_uid,
    transfer_syntax_uid,
    number_of_frames
from read_parquet('{{ var("data_root") }}/tables/incoming_dicom/*.parquet', filename = true)
