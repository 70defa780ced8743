-- One row per word read in the pixels: box, PHI or not, reason (no text).
select
    regexp_extract(filename, '(\d{4}-\d{2}-\d{2})\.parquet$', 1) as ingest_day,
    file,
    frames,
    x1, y1, x2, y2,
    is_phi,
    reason,
    text_score
from read_parquet('{{ var("data_root") }}/tables/pixel_phi_findings/*.parquet', filename = true)
