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


def _efficiency(cases: DataFrame, values: dict[str, str]) -> DataFrame:
    """Per (region, hospital): case-weighted mean of hospital-DRG mean / region-DRG mean of each value
    (`values`: column -> index name), all values in the same two aggregations and one join."""
    region = cases.groupBy("region_code", "drg").agg(*[exact_mean(v).alias(f"_region_{v}") for v in values])
    hosp = cases.groupBy("region_code", "hospital_id", "drg").agg(
        F.count(F.lit(1)).alias("n"), *[exact_mean(v).alias(f"_hosp_{v}") for v in values]
    )
    indices = []
    for value, name in values.items():  # over the hospital-DRG cells where the ratio is defined
        ratio = F.try_divide(F.col(f"_hosp_{value}"), F.col(f"_region_{value}"))
        indices.append((exact_sum(F.col("n") * ratio) / F.sum(F.when(ratio.isNotNull(), F.col("n")))).alias(name))
    return hosp.join(region, ["region_code", "drg"]).groupBy("region_code", "hospital_id").agg(*indices)


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
    efficiency = _efficiency(payments, {"total_cost": "cost_efficiency_index", "los_days": "time_efficiency_index"})
    return base.withColumn("cmi", F.col("total_weight") / F.col("n_cases")).join(efficiency, keys, "left")


def riv(cases: DataFrame, values: dict[str, str]) -> DataFrame:
    """One-row DataFrame: R^2 of each value explained by DRG (`values`: column -> result name; null when
    there is no variance), over the cases where the value is present, all values in one aggregation."""
    per_drg = cases.groupBy("drg").agg(*[
        agg.alias(f"_{part}_{value}") for value in values
        for part, agg in (("n", F.count(value)), ("m", exact_mean(value)), ("sd", exact_stddev(value)))
    ])
    total = per_drg.agg(*[(exact_sum(F.col(f"_n_{v}") * F.col(f"_m_{v}")) / F.sum(f"_n_{v}")).alias(f"_grand_{v}")
                          for v in values])
    parts = per_drg.crossJoin(total).agg(*[
        agg for v in values for agg in (
            exact_sum(F.col(f"_n_{v}") * (F.col(f"_m_{v}") - F.col(f"_grand_{v}")) ** 2).alias(f"_ssb_{v}"),
            # a DRG without the value has n = 0 and adds nothing (its SD is null)
            exact_sum(F.greatest(F.col(f"_n_{v}") - 1, F.lit(0)) * F.coalesce(F.col(f"_sd_{v}"), F.lit(0.0)) ** 2)
            .alias(f"_ssw_{v}"))
    ])
    return parts.select(*[F.try_divide(F.col(f"_ssb_{v}"), F.col(f"_ssb_{v}") + F.col(f"_ssw_{v}")).alias(name)
                          for v, name in values.items()])


def grouping_quality(cases: DataFrame, inliers: DataFrame, weights: DataFrame) -> DataFrame:
    """One row: n_cases, n_drgs, RIV of cost (all, inliers) and LOS, and DRGs whose cost CV > 1."""
    cv = weights.agg(
        F.count(F.lit(1)).alias("n_drgs"),
        F.sum("n_cases").alias("n_cases"),
        F.sort_array(F.collect_list(F.when(F.col("cv_cost") > 1, F.col("drg")))).alias("drgs_cv_gt_1"),
    )
    return (
        cv.crossJoin(riv(cases, {"total_cost": "riv_cost", "los_days": "riv_los"}))
        .crossJoin(riv(inliers, {"total_cost": "riv_cost_trimmed"}))
        .withColumn("n_drgs_cv_gt_1", F.size("drgs_cv_gt_1").cast("long"))
    )
