"""Stage entry points of the DRG recalibration pipeline.

Each module is one stage (ingest, validate, group, price, publish, nightly); each is a thin command over
pure DataFrame -> DataFrame functions so the same logic runs under pytest, `drg` and `spark-submit`.
"""
