"""Hospital indices and grouping quality from priced cases.

Why these definitions (recalibration.md lets each be chosen; we pick one and state it):
- CMI = sum of case RWs / cases.
- Cost efficiency index (费用消耗指数) = sum_d n_hd (e_hd / E_d) / sum_d n_hd, with e_hd the hospital's
  and E_d the region's mean cost in DRG d (untrimmed: the index measures what was spent). The time
  efficiency index (时间消耗指数) is the same with mean LOS. 1 = the region's average efficiency.
- RIV = between-DRG sum of squares / total sum of squares, from per-DRG n, mean and population
  variance (numerically stable, one aggregation), on cost (all cases and trim inliers) and LOS.
Every sum and mean is an exact (jobs.exact) one, so a resumed night reproduces the indices bit for bit.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.exact import exact_mean, exact_stddev, exact_sum


def _efficiency(cases: DataFrame, value: str) -> DataFrame:
    """Per (region, hospital): case-weighted mean of hospital-DRG mean / region-DRG mean of `value`."""
    region = cases.groupBy("region_code", "drg").agg(exact_mean(value).alias("region_mean"))
    hosp = cases.groupBy("region_code", "hospital_id", "drg").agg(
        F.count(F.lit(1)).alias("n"), exact_mean(value).alias("hosp_mean")
    )
    ratio = F.try_divide(F.col("hosp_mean"), F.col("region_mean"))
    return (
        hosp.join(region, ["region_code", "drg"])
        .where(ratio.isNotNull())
        .groupBy("region_code", "hospital_id")
        .agg((exact_sum(F.col("n") * ratio) / F.sum("n")).alias(f"{value}_index"))
    )


def hospital_indices(payments: DataFrame) -> DataFrame:
    """One row per (region_code, hospital_id); `payments` are priced cases (rw, outlier_type, payment)."""
    base = payments.groupBy("region_code", "hospital_id").agg(
        F.count(F.lit(1)).alias("n_cases"),
        exact_sum("rw").alias("total_weight"),
        F.mean(F.when(F.col("outlier_type") == "high", 1.0).otherwise(0.0)).alias("high_outlier_share"),
        F.mean(F.when(F.col("outlier_type") == "low", 1.0).otherwise(0.0)).alias("low_outlier_share"),
        exact_sum("payment").alias("total_payment"),
        exact_sum("total_cost").alias("total_cost"),
    )
    keys = ["region_code", "hospital_id"]
    return (
        base.withColumn("cmi", F.col("total_weight") / F.col("n_cases"))
        .join(_efficiency(payments, "total_cost"), keys, "left")
        .join(_efficiency(payments, "los_days"), keys, "left")
        .withColumnRenamed("total_cost_index", "cost_efficiency_index")
        .withColumnRenamed("los_days_index", "time_efficiency_index")
    )


def riv(cases: DataFrame, value: str) -> DataFrame:
    """One-row DataFrame: R^2 of `value` explained by DRG (null when there is no variance)."""
    per_drg = (
        cases.where(F.col(value).isNotNull())
        .groupBy("drg")
        .agg(F.count(F.lit(1)).alias("n"), exact_mean(value).alias("m"), exact_stddev(value).alias("sd"))
    )
    total = per_drg.agg((exact_sum(F.col("n") * F.col("m")) / F.sum("n")).alias("grand"))
    parts = per_drg.crossJoin(total).agg(
        exact_sum(F.col("n") * (F.col("m") - F.col("grand")) ** 2).alias("ssb"),
        exact_sum((F.col("n") - 1) * F.coalesce(F.col("sd"), F.lit(0.0)) ** 2).alias("ssw"),
    )
    return parts.select(F.try_divide(F.col("ssb"), F.col("ssb") + F.col("ssw")).alias("riv"))


def grouping_quality(cases: DataFrame, inliers: DataFrame, weights: DataFrame) -> DataFrame:
    """One row: n_cases, n_drgs, RIV of cost (all, inliers) and LOS, and DRGs whose cost CV > 1."""
    cv = weights.agg(
        F.count(F.lit(1)).alias("n_drgs"),
        F.sum("n_cases").alias("n_cases"),
        F.sort_array(F.collect_list(F.when(F.col("cv_cost") > 1, F.col("drg")))).alias("drgs_cv_gt_1"),
    )
    return (
        cv.crossJoin(riv(cases, "total_cost").withColumnRenamed("riv", "riv_cost"))
        .crossJoin(riv(inliers, "total_cost").withColumnRenamed("riv", "riv_cost_trimmed"))
        .crossJoin(riv(cases, "los_days").withColumnRenamed("riv", "riv_los"))
        .withColumn("n_drgs_cv_gt_1", F.size("drgs_cv_gt_1").cast("long"))
    )
