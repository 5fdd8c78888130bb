"""Per-hospital coding-quality score and upcoding signal, from silver.case_quality (one row per case).

Why leave-one-out z-scores: a region has a handful to a few dozen hospitals. If the hospital under test
is part of its own reference group it drags the mean towards itself and inflates the spread, which hides
exactly the outlier we look for (with n hospitals, an ordinary z can never exceed (n-1)/sqrt(n)). Each
hospital is therefore compared with the *other* eligible hospitals of its region.

Why CC/MCC share and mean severity: upcoding shows as more cases with a complication code (CC/MCC), or
as complications shifted from CC to MCC; the two z-scores catch either, and the larger is reported.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.exact import exact_sum
from quality.catalogue import Scoring

HOSPITAL = ("region_code", "hospital_id")


def _peer_z(x: str, eligible: Column, min_peers: int) -> Column:
    """(x - mean of peers) / sample sd of peers; peers = the other eligible hospitals of the region."""
    region = Window.partitionBy("region_code")
    value = F.when(eligible, F.col(x))
    n = F.count(value).over(region) - F.when(eligible, 1).otherwise(0)
    s1 = exact_sum(value, over=region) - F.coalesce(value, F.lit(0.0))
    s2 = exact_sum(value * value, over=region) - F.coalesce(value * value, F.lit(0.0))
    mean = F.try_divide(s1, n.cast("double"))
    var = F.try_divide(s2 - n * mean * mean, (n - 1).cast("double"))
    sd = F.sqrt(F.greatest(var, F.lit(0.0)))
    z = F.try_divide(F.col(x) - mean, F.when(sd > 1e-12, sd))
    return F.when(eligible & (n >= min_peers), z)


def hospital_quality(case_quality: DataFrame, scoring: Scoring) -> DataFrame:
    """gold.hospital_quality rows (without run_id), one per (region_code, hospital_id).

    quality_score = 1 - sum(weight of each case's worst severity) / n_cases (clean cases weigh 0), so a
    hospital with only warnings scores better than one with errors on the same share of cases.
    """
    weights = scoring.severity_weights
    penalty = F.coalesce(
        F.when(F.col("worst_severity") == "error", F.lit(weights.get("error", 1.0)))
        .when(F.col("worst_severity") == "warning", F.lit(weights.get("warning", 0.0))),
        F.lit(0.0),
    )
    rank = F.when(F.col("severity") == "MCC", 2).when(F.col("severity") == "CC", 1).otherwise(0)
    per = case_quality.groupBy(*HOSPITAL).agg(
        F.count(F.lit(1)).alias("n_cases"),
        F.sum(F.when(F.size("failed_rules") == 0, 1).otherwise(0)).alias("n_clean"),
        exact_sum(penalty).alias("_penalty"),
        F.avg(F.when(rank > 0, 1.0).otherwise(0.0)).alias("cc_mcc_share"),
        F.avg(rank.cast("double")).alias("mean_severity"),
    )
    eligible = F.col("n_cases") >= scoring.min_cases
    scored = per.select(
        *HOSPITAL, "n_cases", "n_clean",
        (F.col("n_clean") / F.col("n_cases")).alias("clean_share"),
        (F.lit(1.0) - F.col("_penalty") / F.col("n_cases")).alias("quality_score"),
        "cc_mcc_share", "mean_severity",
        _peer_z("cc_mcc_share", eligible, scoring.min_peers).alias("cc_mcc_z"),
        _peer_z("mean_severity", eligible, scoring.min_peers).alias("severity_z"),
    )
    upcoding_z = F.greatest("cc_mcc_z", "severity_z")
    return scored.select(
        *HOSPITAL, "n_cases", "n_clean", "clean_share", "quality_score", "cc_mcc_share", "mean_severity",
        upcoding_z.alias("upcoding_z"),
        F.coalesce(upcoding_z > scoring.upcoding_z_threshold, F.lit(False)).alias("upcoding_flag"),
        "cc_mcc_z", "severity_z",
    )
