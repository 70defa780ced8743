-- Boxes of burned-in text judged PHI over every day, per modality of the file and reason.
with modality as (
    select ingest_day, file, value as modality
    from {{ ref('stg_deidentified_metadata') }}
    where keyword = 'Modality' and depth = 0
)

select
    coalesce(nullif(modality.modality, ''), 'unknown') as modality,
    findings.reason,
    count(*) as phi_boxes,
    count(distinct findings.ingest_day || '/' || findings.file) as files,
    count(distinct findings.ingest_day) as days,
    avg(findings.text_score) as mean_text_score
from {{ ref('stg_pixel_findings') }} as findings
left join modality using (ingest_day, file)
where findings.is_phi
group by all
