"""DIP monitoring beside the DRG indices (S1 p.88-103): per hospital and for the region.

Per hospital (settlement-year cases): CMI on the score scale = sum of packet scores / cases (about 1000 =
the regional average); 费用消耗指数 = mean(case cost / packet mean cost); 时间消耗指数 = mean(case LOS /
packet mean LOS); share of cases in core packets (入组率); low/high outlier shares. For the region: the
same plus packet CV bands (CV < 0.5, 0.5-1, > 1) and 特例单议 counts.

Every index is a ratio of sums, so both tables aggregate payments.case_totals (a few rows per hospital
and fund) rather than the cases: the cases are not read again for monitoring.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.exact import exact_sum


def _indices(rate: Column, cutoff: float | None) -> list:
    n = F.sum("n")
    share = lambda c: (F.sum(c) / n).cast("double")  # noqa: E731
    review = F.size(F.filter("review_ratios", lambda r: r >= cutoff)) if cutoff is not None else F.lit(0)
    return [
        n.alias("n_cases"),
        exact_sum("score_sum").alias("total_packet_score"),
        F.try_divide(exact_sum("score_sum"), n).alias("cmi"),
        F.try_divide(exact_sum("cost_index_sum"), n).alias("cost_consumption_index"),
        F.try_divide(exact_sum("time_index_sum"), F.sum("time_index_n")).alias("time_consumption_index"),
        share("n_core").alias("core_share"),
        share("n_low").alias("low_outlier_share"),
        share("n_high").alias("high_outlier_share"),
        F.sum(review).alias("special_review_cases"),
        exact_sum("case_score_sum").alias("total_case_score"),
        exact_sum(F.col("case_score_sum") * rate).alias("total_payment"),
        exact_sum("cost_sum").alias("total_cost"),
    ]


def indices(totals: DataFrame, year: int, rate: Column, cutoff: float | None) -> DataFrame:
    """The settlement year's indices per hospital and for the whole region, in one aggregation of
    payments.case_totals: a rollup whose `level` is 0 for a hospital's row and 3 for the region's."""
    return totals.where(F.col("year") == year).rollup("region_code", "hospital_id").agg(
        *_indices(rate, cutoff), F.grouping_id().alias("level"))


def hospital_indices(indices: DataFrame) -> DataFrame:
    return indices.where(F.col("level") == 0)


def catalogue_shape(catalogue: DataFrame) -> list[Column]:
    """The catalogue's shape for the region summary: packets by kind, CV bands, subtypes, base cases."""
    count_if = lambda cond: F.sum(F.when(cond, 1).otherwise(0)).cast("long")  # noqa: E731
    return [
        count_if(F.col("kind") == "core").alias("n_core_packets"),
        count_if(F.col("kind") == "comprehensive").alias("n_comprehensive_packets"),
        count_if(F.col("cv") < 0.5).alias("packets_cv_lt_0_5"),
        count_if(F.col("cv").between(0.5, 1.0)).alias("packets_cv_0_5_to_1"),
        count_if(F.col("cv") > 1.0).alias("packets_cv_gt_1"),
        F.sum(F.coalesce(F.size("subtypes"), F.lit(0))).cast("long").alias("n_subtypes"),
        F.sum("n_cases").cast("long").alias("n_base_cases"),
    ]


def region_summary(indices: DataFrame, shape: dict, year: int, cutoff: float | None) -> DataFrame:
    """One row: the settlement year's indices for the whole region, the catalogue's shape (the values of
    `catalogue_shape`, computed on the driver with the point value) and the 特例单议 cutoff (kept so a
    night settling new batches flags them as the calibration did)."""
    return indices.where(F.col("level") == 3).withColumns(
        {**{k: F.lit(v) for k, v in shape.items()}, "settlement_year": F.lit(year),
         "special_review_cutoff": F.lit(cutoff).cast("double")})
