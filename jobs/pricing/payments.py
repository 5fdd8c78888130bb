"""From weights to money: hospital coefficients, high/low cost cases, base rates, case payments.

Why in this order: a case's payment units (RW x hospital coefficient, adjusted when the case is a high
or low cost outlier) do not depend on the base rate, so the rate can be solved exactly as budget / sum
of units per region and fund, and the budget is met by construction; the check recomputes it from the
case payments actually produced, so a join that drops or doubles cases shows as a budget gap.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.exact import exact_sum
from jobs.pricing.policy import FUNDS, Policy


def with_hospital_coef(cases: DataFrame, policy: Policy) -> DataFrame:
    """Add `hospital_coef`: by hospital, else by the hospital's level, else the policy default."""
    hc = policy.hospital_coefficients
    named = {h: hc.coefficient(h) for h in {*hc.levels, *hc.by_hospital}}
    if not named:
        return cases.withColumn("hospital_coef", F.lit(hc.default))
    spark = cases.sparkSession
    table = spark.createDataFrame(sorted(named.items()), "hospital_id string, coef double")
    return (
        cases.join(F.broadcast(table), "hospital_id", "left")
        .withColumn("hospital_coef", F.coalesce("coef", F.lit(hc.default)))
        .drop("coef")
    )


def high_multiplier(policy: Policy):
    """The high-outlier threshold multiplier for each case's RW band, as a Spark expression."""
    bands = policy.outliers.high_bands
    expr = F.lit(bands[-1].multiplier)
    for band in reversed(bands[:-1]):
        expr = F.when(F.col("rw") <= band.rw_max, band.multiplier).otherwise(expr)
    return expr


def cost_per_rw(cases: DataFrame) -> DataFrame:
    """(region_code, cost_per_rw): the region's total cost over total RW of cases carrying rw."""
    valid = F.col("total_cost") > 0
    return cases.groupBy("region_code").agg(
        F.try_divide(exact_sum(F.when(valid, F.col("total_cost"))), exact_sum(F.when(valid, F.col("rw"))))
        .alias("cost_per_rw")
    )


def classify_and_unit(cases: DataFrame, policy: Policy, per_rw: DataFrame | None = None) -> DataFrame:
    """Add expected_cost, outlier_type and payment_units to cases carrying rw and hospital_coef.

    The DRG average a case is compared with is RW x its region's mean cost per unit of weight: the same
    thing as the region's DRG mean when costs follow the weights, but defined even for DRGs with a
    handful of cases in the region, and not shifted by one region's cost level. `per_rw`: that cost per
    unit of the calibration the weights come from (default: of `cases` themselves).
    """
    o = policy.outliers
    per_rw = cost_per_rw(cases) if per_rw is None else per_rw
    df = cases.join(F.broadcast(per_rw), "region_code").withColumn("expected_cost", F.col("rw") * F.col("cost_per_rw"))
    ratio = F.try_divide(F.col("total_cost"), F.col("expected_cost"))
    mult = high_multiplier(policy)
    normal = F.col("rw") * F.col("hospital_coef")
    return (
        df.withColumn(
            "outlier_type",
            F.when(ratio > mult, "high").when(ratio < o.low_multiplier, "low").otherwise("normal"),
        )
        .withColumn(
            "payment_units",
            F.when(F.col("outlier_type") == "high", normal + o.high_pay_ratio * F.col("rw") * (ratio - mult))
            .when(F.col("outlier_type") == "low", F.least(normal, F.col("rw") * F.greatest(ratio, F.lit(0.0))))
            .otherwise(normal),
        )
        .drop("cost_per_rw")
    )


def budget_rules(spark: SparkSession, policy: Policy) -> DataFrame:
    rows = [(b.fund, b.region_code, b.amount, b.share_of_cost) for b in policy.budgets]
    schema = "fund string, rule_region string, amount double, share_of_cost double"
    return spark.createDataFrame(rows, schema)


def base_rates(units: DataFrame, policy: Policy) -> DataFrame:
    """Per region and fund: budget, sum of payment units, base rate = budget / units.

    A region-specific budget rule beats the fund's general one. Region/fund pairs without a rule get
    no rate (their cases are priced with a null payment and reported, not silently paid at 0).
    """
    agg = (
        units.where(F.col("fund").isin(*FUNDS))
        .groupBy("region_code", "fund")
        .agg(
            F.count(F.lit(1)).alias("n_cases"),
            exact_sum("payment_units").alias("sum_rw_coef"),
            exact_sum(F.when(F.col("total_cost") > 0, F.col("total_cost")).otherwise(0.0)).alias("actual_cost"),
        )
    )
    rules = F.broadcast(budget_rules(units.sparkSession, policy))
    matched = agg.join(rules, "fund").where(
        F.col("rule_region").isNull() | (F.col("rule_region") == F.col("region_code"))
    )
    most_specific = Window.partitionBy("region_code", "fund").orderBy(F.col("rule_region").asc_nulls_last())
    return (
        matched.withColumn("_rank", F.row_number().over(most_specific))
        .where("_rank = 1")
        .withColumn("budget", F.coalesce("amount", F.col("share_of_cost") * F.col("actual_cost")))
        .withColumn("base_rate", F.try_divide(F.col("budget"), F.col("sum_rw_coef")))
        .select("region_code", "fund", "budget", "sum_rw_coef", "n_cases", "base_rate")
    )


def case_payments(units: DataFrame, rates: DataFrame) -> DataFrame:
    """Each case's payment = base rate of its region and fund x payment units, and payment - cost."""
    rate = F.broadcast(rates.select("region_code", "fund", "base_rate"))
    payment = F.col("base_rate") * F.col("payment_units")
    return (
        units.join(rate, ["region_code", "fund"], "left")
        .withColumn("payment", payment)
        .withColumn("payment_minus_cost", payment - F.col("total_cost"))
    )


def budget_check(rates: DataFrame, payments: DataFrame) -> DataFrame:
    """Rates with expected_payment (sum of the produced case payments) and budget_gap_pct."""
    paid = payments.groupBy("region_code", "fund").agg(exact_sum("payment").alias("expected_payment"))
    return (
        rates.join(paid, ["region_code", "fund"], "left")
        .withColumn("expected_payment", F.coalesce("expected_payment", F.lit(0.0)))
        .withColumn("budget_gap_pct", (F.col("expected_payment") - F.col("budget")) / F.col("budget") * 100)
        .withColumn("n_cases", F.col("n_cases").cast(T.LongType()))
    )
