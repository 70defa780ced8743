"""Plain-Python core of the pipeline: DICOM I/O, policy, tag engine, pixels, codecs, slides,
validation. Nothing here imports Dagster, so the CLI and tests use it directly."""
