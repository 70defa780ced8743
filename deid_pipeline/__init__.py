"""De-identification of DICOM studies and SVS slides, orchestrated by Dagster.

`deid_pipeline.core` is the plain library; the modules around it hold the Dagster definitions.
"""
