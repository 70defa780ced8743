-- One row per ingest day: what was dropped, de-identified, found in the pixels and validated.
-- Element counts: incoming and de-identified elements at any depth, file meta included.
with days as (
    select ingest_day from {{ ref('stg_incoming_files') }}
    union
    select ingest_day from {{ ref('stg_deidentified_metadata') }}
    union
    select ingest_day from {{ ref('stg_validation_results') }}
),

dropped as (
    select
        ingest_day,
        count(*) as files_dropped,
        count(*) filter (where kind = 'dicom') as dicom_files,
        count(*) filter (where kind = 'slide') as slides,
        count(*) filter (where not readable) as unreadable_files,
        -- What the tag stage takes: everything but slides.
        count(*) filter (where kind <> 'slide') as files_to_deidentify
    from {{ ref('stg_incoming_files') }}
    group by ingest_day
),

incoming_elements as (
    select ingest_day, count(*) as elements_incoming
    from {{ ref('stg_dicom_metadata') }}
    group by ingest_day
),

deidentified as (
    select ingest_day, count(distinct file) as files_deidentified, count(*) as elements_deidentified
    from {{ ref('stg_deidentified_metadata') }}
    group by ingest_day
),

audited as (
    select
        ingest_day,
        count(*) as elements_audited,
        count(*) filter (where action = 'delete') as elements_deleted,
        count(*) filter (where action = 'keep') as elements_kept
    from {{ ref('stg_deid_audit') }}
    group by ingest_day
),

pixels as (
    select
        ingest_day,
        count(*) filter (where is_phi) as phi_boxes,
        count(distinct file) filter (where is_phi) as files_with_phi_boxes
    from {{ ref('stg_pixel_findings') }}
    group by ingest_day
),

validated as (
    select
        ingest_day,
        count(*) as validation_checks,
        count(*) filter (where not check_passed) as validation_failures
    from {{ ref('stg_validation_results') }}
    group by ingest_day
)

select
    days.ingest_day,
    coalesce(dropped.files_dropped, 0) as files_dropped,
    coalesce(dropped.dicom_files, 0) as dicom_files,
    coalesce(dropped.slides, 0) as slides,
    coalesce(dropped.unreadable_files, 0) as unreadable_files,
    coalesce(deidentified.files_deidentified, 0) as files_deidentified,
    -- Quarantined by the tag stage (or not yet run): taken in, not written out.
    greatest(coalesce(dropped.files_to_deidentify, 0)
             - coalesce(deidentified.files_deidentified, 0), 0) as files_not_deidentified,
    coalesce(incoming_elements.elements_incoming, 0) as elements_incoming,
    coalesce(deidentified.elements_deidentified, 0) as elements_deidentified,
    coalesce(audited.elements_audited, 0) as elements_audited,
    coalesce(audited.elements_deleted, 0) as elements_deleted,
    coalesce(audited.elements_kept, 0) as elements_kept,
    coalesce(pixels.phi_boxes, 0) as phi_boxes,
    coalesce(pixels.files_with_phi_boxes, 0) as files_with_phi_boxes,
    coalesce(validated.validation_checks, 0) as validation_checks,
    coalesce(validated.validation_failures, 0) as validation_failures,
    case when validated.validation_checks > 0
         then 1 - validated.validation_failures / validated.validation_checks end
        as validation_pass_rate
from days
left join dropped using (ingest_day)
left join incoming_elements using (ingest_day)
left join deidentified using (ingest_day)
left join audited using (ingest_day)
left join pixels using (ingest_day)
left join validated using (ingest_day)
