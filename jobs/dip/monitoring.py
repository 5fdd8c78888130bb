"""DIP monitoring beside the DRG indices (S1 p.88-103): per hospital and for the region.

Per hospital (settlement-year cases): CMI on the score scale = sum of packet scores / cases (about 1000 =
the regional average); 费用消耗指数 = mean(case cost / packet mean cost); 时间消耗指数 = mean(case LOS /
packet mean LOS); share of cases in core packets (入组率); low/high outlier shares. For the region: the
same plus packet CV bands (CV < 0.5, 0.5-1, > 1) and 特例单议 counts.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.exact import exact_mean, exact_sum


def _indices() -> list:
    return [
        F.count("*").alias("n_cases"),
        exact_sum("score").alias("total_packet_score"),
        exact_mean("score").alias("cmi"),
        exact_mean(F.col("cost") / F.col("mean_cost")).alias("cost_consumption_index"),
        exact_mean(F.try_divide(F.col("los"), F.col("mean_los"))).alias("time_consumption_index"),
        F.avg(F.when(F.col("kind") == "core", 1.0).otherwise(0.0)).alias("core_share"),
        F.avg(F.when(F.col("outlier") == "low", 1.0).otherwise(0.0)).alias("low_outlier_share"),
        F.avg(F.when(F.col("outlier") == "high", 1.0).otherwise(0.0)).alias("high_outlier_share"),
        F.sum(F.col("special_review").cast("int")).alias("special_review_cases"),
        exact_sum("case_score").alias("total_case_score"),
        exact_sum("payment").alias("total_payment"),
        exact_sum("cost").alias("total_cost"),
    ]


def hospital_indices(scored: DataFrame, year: int) -> DataFrame:
    return scored.where(F.col("year") == year).groupBy("region_code", "hospital_id").agg(*_indices())


def region_summary(scored: DataFrame, catalogue: DataFrame, year: int) -> DataFrame:
    """One row: the settlement year's indices for the whole region, and the catalogue's shape."""
    cases = scored.where(F.col("year") == year).agg(*_indices())
    shape = catalogue.agg(
        F.sum(F.when(F.col("kind") == "core", 1).otherwise(0)).alias("n_core_packets"),
        F.sum(F.when(F.col("kind") == "comprehensive", 1).otherwise(0)).alias("n_comprehensive_packets"),
        F.sum(F.when(F.col("cv") < 0.5, 1).otherwise(0)).alias("packets_cv_lt_0_5"),
        F.sum(F.when(F.col("cv").between(0.5, 1.0), 1).otherwise(0)).alias("packets_cv_0_5_to_1"),
        F.sum(F.when(F.col("cv") > 1.0, 1).otherwise(0)).alias("packets_cv_gt_1"),
        F.sum(F.coalesce(F.size("subtypes"), F.lit(0))).alias("n_subtypes"),
        F.sum("n_cases").alias("n_base_cases"),
    )
    return cases.crossJoin(shape).withColumn("settlement_year", F.lit(year))
