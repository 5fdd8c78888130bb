"""Cases simulated from known true weights, to check that recalibration recovers them.

Why it exists: the only honest test of a weighting method is data whose answer is known. Costs are
true RW x a base cost x a hospital cost level x mean-one lognormal noise, so the true weights are the
ratios of mean costs; a share of cases is then contaminated with gross errors (costs multiplied by
`high_factor`, e.g. keyed in fen, or reduced to near zero). Generated entirely in Spark.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def simulate_cases(
    weights: DataFrame,
    n_cases: int,
    seed: int = 1,
    sigma: float = 0.5,
    high_share: float = 0.03,
    high_factor: tuple[float, float] = (5.0, 20.0),
    low_share: float = 0.02,
    low_factor: tuple[float, float] = (0.001, 0.05),
    hospitals: int = 20,
    hospital_sigma: float = 0.1,
    base_cost: float = 12000.0,
) -> DataFrame:
    """`weights` (drg, true_rw, share): about n_cases x share cases per DRG, with the columns of priced
    cases (region_code, hospital_id, case_id, drg, adrg, mdc, fund, los_days, total_cost).
    """
    spark = weights.sparkSession
    total_share = weights.agg(F.sum("share")).first()[0]
    per_drg = weights.withColumn("n", F.greatest(F.lit(1), F.round(F.col("share") / total_share * n_cases)))
    cases = per_drg.withColumn("i", F.explode(F.sequence(F.lit(1), F.col("n").cast("int"))))
    hosp = spark.range(hospitals).select(
        F.col("id").alias("h"), F.exp(F.randn(seed + 1) * hospital_sigma - hospital_sigma**2 / 2).alias("level")
    )
    u = F.rand(seed + 2)
    contaminate = (
        F.when(u < high_share, F.lit(high_factor[0]) + F.rand(seed + 3) * (high_factor[1] - high_factor[0]))
        .when(u < high_share + low_share, F.lit(low_factor[0]) + F.rand(seed + 4) * (low_factor[1] - low_factor[0]))
        .otherwise(1.0)
    )
    noise = F.exp(F.randn(seed + 5) * sigma - sigma**2 / 2)
    return (
        cases.withColumn("h", (F.rand(seed + 6) * hospitals).cast("long"))
        .join(F.broadcast(hosp), "h")
        .select(
            F.lit("R1").alias("region_code"),
            F.concat(F.lit("H"), F.col("h").cast("string")).alias("hospital_id"),
            F.concat_ws("-", "drg", F.col("i").cast("string")).alias("case_id"),
            "drg",
            F.substring("drg", 1, 3).alias("adrg"),
            F.concat(F.lit("MDC"), F.substring("drg", 1, 1)).alias("mdc"),
            F.when(F.rand(seed + 7) < 0.6, "employee").otherwise("resident").alias("fund"),
            F.greatest(F.lit(1.0), F.round(F.col("true_rw") * 4 * noise)).alias("los_days"),
            (F.col("true_rw") * base_cost * F.col("level") * noise * contaminate).alias("total_cost"),
            "true_rw",
        )
    )


def recovery_errors(estimated: DataFrame, truth: DataFrame, min_cases: int) -> DataFrame:
    """Per DRG with >= min_cases cases: |rw / true - 1| after normalising both to the same case mix."""
    joined = estimated.select("drg", "n_cases", "rw").join(truth.select("drg", "true_rw"), "drg")
    norms = joined.agg(
        (F.sum(F.col("n_cases") * F.col("rw")) / F.sum(F.col("n_cases") * F.col("true_rw"))).alias("scale")
    )
    return (
        joined.crossJoin(norms)
        .where(F.col("n_cases") >= min_cases)
        .select("drg", "n_cases", F.abs(F.col("rw") / (F.col("true_rw") * F.col("scale")) - 1).alias("abs_err"))
    )


def scheme_cases(spark, pack: str, n_cases: int, seed: int = 1, hospitals: int = 20) -> tuple[DataFrame, DataFrame]:
    """Cases of a real scheme whose published weights are known, grouped by that scheme: (priced cases,
    truth (drg, true_rw)).

    Why grouped: a region's weights are estimated per DRG *as its grouper assigns them*, so the check of
    a region's published weights (Harbin's) must draw realistic cases for its own pack (jobs.synth, with
    the pack's reference weights as the true weights and the generator's cost noise and outliers) and
    group them with that pack, not label simulated costs with DRG codes. Truth: the DRGs that carry a
    reference weight in the pack (the published list).
    """
    from jobs.definitions import load_pack
    from jobs.group import group_cases
    from jobs.synth import generate

    rules = load_pack(spark, pack)
    truth = spark.createDataFrame(
        [(d["drg"], float(d["reference_weight"])) for ds in rules.drgs.values() for d in ds
         if d["reference_weight"] is not None], "drg string, true_rw double")
    cases, _, _ = generate(spark, n_cases, 1, hospitals, seed, pack, error_rate=0.0)
    grouped = group_cases(cases.drop("malformed_row"), rules)
    return grouped.select(
        "region_code", "hospital_id", "case_id", "drg", "adrg", "mdc", F.col("payer").alias("fund"), "los_days",
        "total_cost",
    ), truth
