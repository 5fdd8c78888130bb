"""Write generated cases as regions send them, and the ground truth beside them.

Why this shape: a region delivers one folder per night (`<out>/<region_code>/<batch_id>/part-*.csv`)
in its own layout (headers, encoding, date format, words for coded values), so the same Layout object
that ingestion reads with is applied here in reverse. One Spark job writes every folder (partitioned
by hidden copies of region and batch, then the folders are renamed), so the data is generated once
for the files. Truth goes to `<out>/_truth/` (Parquet), which ingestion skips (leading underscore).
"""

from __future__ import annotations

import uuid

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.errors import PipelineError
from jobs.layouts import Layout, load_layout
from schemas.discharge import FIELDS

FORMATS = ("csv", "parquet")
_REGION, _BATCH = "_region", "_batch"


def _inverse(layout: Layout, field: str) -> dict[str, str]:
    """canonical value -> the first source word the layout lists for it (男 for sex 1)."""
    inverse: dict[str, str] = {}
    for source, canonical in layout.values.get(field, {}).items():
        inverse.setdefault(str(canonical), source)
    return inverse


def _as_source(cases: DataFrame, layout: Layout, fmt: str) -> DataFrame:
    """Canonical columns -> the layout's columns and value spellings (text for CSV, typed for Parquet)."""
    cols: list[Column] = []
    for f in FIELDS:
        c = F.col(f.name)
        if fmt == "csv":
            if f.kind == "codes":
                c = F.array_join(c, layout.list_separator)
            elif f.kind == "date":
                c = F.date_format(c, layout.date_formats[0])
            elif f.kind == "double":
                c = F.when(c.isNotNull(), F.format_string("%.2f", c))
            else:
                c = c.cast("string")
        inverse = _inverse(layout, f.name)
        if inverse:
            lookup = F.create_map(*[F.lit(x) for kv in inverse.items() for x in kv])
            text = c.cast("string")
            c = F.coalesce(F.element_at(lookup, text), text)
        if fmt == "csv" and f.name == "cost_other":  # a malformed row: an extra, unquoted delimiter
            c = F.when(F.col("malformed_row"), F.concat(c, F.lit(layout.delimiter + "9.99"))).otherwise(c)
        cols.append(c.alias(layout.source_column(f.name)))
    return cases.select(*cols, F.col("region_code").alias(_REGION), F.col("batch_id").alias(_BATCH))


def _fs(spark: SparkSession, path: str):
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark._jsc.hadoopConfiguration()), hpath


def _move_partitions(spark: SparkSession, staging: str, out: str) -> list[str]:
    """`staging/_region=R/_batch=B` -> `out/R/B`, replacing what a previous run left there."""
    fs, root = _fs(spark, staging)
    jvm = spark._jvm
    moved = []
    for region_dir in fs.listStatus(root):
        name = region_dir.getPath().getName()
        if not name.startswith(_REGION + "="):
            continue
        region = name.split("=", 1)[1]
        for batch_dir in fs.listStatus(region_dir.getPath()):
            batch = batch_dir.getPath().getName().split("=", 1)[1]
            target = jvm.org.apache.hadoop.fs.Path(f"{out.rstrip('/')}/{region}/{batch}")
            fs.delete(target, True)
            fs.mkdirs(target.getParent())
            if not fs.rename(batch_dir.getPath(), target):
                raise PipelineError(f"could not move generated batch to {target.toString()}")
            moved.append(f"{region}/{batch}")
    fs.delete(root, True)
    return sorted(moved)


def write_batches(
    spark: SparkSession,
    cases_df: DataFrame,
    truth_df: DataFrame,
    errors_df: DataFrame,
    out: str,
    layout: str | Layout | None = None,
    fmt: str = "csv",
) -> list[str]:
    """Write `<out>/<region>/<batch>/part-*` in `layout` and `<out>/_truth/{cases,errors,hospitals}`.

    Returns the `region/batch` folders written. Re-running replaces those folders and the truth.
    """
    if fmt not in FORMATS:
        raise PipelineError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    layout = layout if isinstance(layout, Layout) else load_layout(layout)
    if fmt == "csv" and layout.list_separator == layout.delimiter:
        raise PipelineError(f"layout {layout.name}: list_separator must differ from the delimiter for CSV")
    staging = f"{out.rstrip('/')}/_staging-{uuid.uuid4().hex[:8]}"
    rows = _as_source(cases_df, layout, fmt)
    writer = rows.write.mode("overwrite").partitionBy(_REGION, _BATCH)
    if fmt == "csv":
        if layout.spark_encoding != "UTF-8":  # Spark 4 accepts only Unicode/Latin charsets unless asked
            spark.conf.set("spark.sql.legacy.javaCharsets", "true")
        # Quoting off: generated values never hold the delimiter, so only the malformed rows break.
        writer.option("header", True).option("sep", layout.delimiter).option("encoding", layout.spark_encoding) \
            .option("quote", "\u0000").option("emptyValue", "").csv(staging)
    else:
        writer.parquet(staging)
    folders = _move_partitions(spark, staging, out)

    truth = f"{out.rstrip('/')}/_truth"
    truth_df.write.mode("overwrite").parquet(f"{truth}/cases")
    errors_df.write.mode("overwrite").parquet(f"{truth}/errors")
    hospitals = spark.read.parquet(f"{truth}/cases").groupBy("region_code", "hospital_id").agg(
        F.first("base_rate").alias("base_rate"),
        F.first("hospital_efficiency").alias("efficiency"),
        F.first("hospital_upcoding").alias("upcoding"),
        F.count(F.lit(1)).alias("n_cases"),
    )
    hospitals.coalesce(1).write.mode("overwrite").parquet(f"{truth}/hospitals")
    return folders
