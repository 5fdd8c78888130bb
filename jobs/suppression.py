"""Small-cell suppression: no published cell lets a reader count fewer than k cases.

Why apart from jobs.publish: DRG's and DIP's published tables (jobs.publish, jobs.dip.publish) follow
the same rule (schemas.publish.SUPPRESSION_RULE), so both import it from here.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.names import OTHER


def suppress(df: DataFrame, k: int, stat_columns) -> DataFrame:
    """Null every statistic (and the count) of a cell built from fewer than k cases; flag it."""
    small = F.coalesce(F.col("n_cases") < k, F.lit(True))
    out = df.withColumn("suppressed", small)
    for name in stat_columns:
        out = out.withColumn(name, F.when(small, F.lit(None)).otherwise(F.col(name)))
    return out


def region_cells(cases: DataFrame, k: int) -> DataFrame:
    """Map each (drg, region) to the cell it is published in: itself, or OTHER when too small.

    Regions with fewer than k cases of a DRG merge into OTHER; if OTHER would still hold between 1
    and k-1 cases, the smallest remaining region joins it, so OTHER is never recoverable by
    subtracting the shown regions from the DRG total. Works on the small drg x region count table.
    """
    counts = cases.groupBy("drg", "region_code").agg(F.count("*").alias("n"))
    small = F.col("n") < k
    merged_n = F.sum(F.when(small, F.col("n")).otherwise(0)).over(Window.partitionBy("drg"))
    rank = F.row_number().over(Window.partitionBy("drg", small).orderBy("n", "region_code"))
    merge = small | ((F.col("_merged_n") > 0) & (F.col("_merged_n") < k) & (F.col("_rank") == 1))
    return (
        counts.withColumn("_merged_n", merged_n)
        .withColumn("_rank", rank)
        .select("drg", "region_code", F.when(merge, F.lit(OTHER)).otherwise(F.col("region_code")).alias("cell"))
    )
