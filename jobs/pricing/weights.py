"""Relative weights from priced cases: robust within-DRG trim, tail correction, low volume, cap, CI.

Why this shape: a DRG's weight is its mean cost over the mean cost of all cases, but real cost data
carry gross errors (a cost keyed in fen instead of yuan, a 1-yuan placeholder). A mean +/- 3 SD trim on
ln(cost) lets such errors inflate the SD and so mask themselves; fences from the median and IQR of ln
cost do not move with a few per cent of contamination. Any symmetric trim of a right-skewed cost
distribution also drops more mass from the top than the bottom, biasing wide-spread DRGs downwards
relative to narrow ones; `tail_correction` divides that share back out under a lognormal model.

Everything is one or two groupBy aggregations over the cases plus arithmetic on a per-DRG table of a
few hundred rows: no window over all cases, nothing case-level on the driver.
"""

from __future__ import annotations

from statistics import NormalDist

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.exact import exact_mean, exact_stddev, exact_sum, in_fixed_order
from jobs.pricing.policy import Policy

IQR_TO_SIGMA = 1.349  # IQR of a standard normal
PCT_ACCURACY = 100_000  # percentile_approx: rank error <= n / accuracy


def normal_cdf(x: Column) -> Column:
    """Standard normal CDF as a Spark expression (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    z = F.abs(x) / F.lit(2**0.5)
    t = 1 / (1 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1 - poly * F.exp(-z * z)
    return F.when(x >= 0, 0.5 * (1 + erf)).otherwise(0.5 * (1 - erf))


def drg_descriptives(cases: DataFrame) -> DataFrame:
    """Per DRG: n, untrimmed mean/median/SD/CV of cost and LOS, and ln-cost quantiles for the fences."""
    log_cost = F.when(F.col("total_cost") > 0, F.ln("total_cost"))
    q = F.percentile_approx(log_cost, [0.025, 0.25, 0.5, 0.75, 0.975], PCT_ACCURACY)
    return (
        in_fixed_order(cases, "drg", "total_cost", "los_days")  # equal percentiles, however cases were stored
        .groupBy("drg")
        .agg(
            F.first("adrg", ignorenulls=True).alias("adrg"),
            F.first("mdc", ignorenulls=True).alias("mdc"),
            F.count(F.lit(1)).alias("n_cases"),
            exact_mean("total_cost").alias("mean_cost"),
            F.percentile_approx("total_cost", 0.5, PCT_ACCURACY).cast("double").alias("median_cost"),
            exact_stddev("total_cost").alias("sd_cost"),
            exact_mean("los_days").alias("mean_los"),
            F.percentile_approx("los_days", 0.5, PCT_ACCURACY).cast("double").alias("median_los"),
            exact_stddev("los_days").alias("sd_los"),
            exact_mean(log_cost).alias("mean_log"),
            exact_stddev(log_cost).alias("sd_log_all"),
            q.alias("q"),
        )
        .withColumn("cv_cost", F.try_divide("sd_cost", "mean_cost"))
        .withColumn("cv_los", F.try_divide("sd_los", "mean_los"))
    )


def trim_fences(stats: DataFrame, policy: Policy) -> DataFrame:
    """Add `lo`, `hi` (ln-cost fences), `centre`, `scale` per DRG as the policy's trim method says.

    DRGs with fewer than trim.min_cases cases get open fences: their quantiles are noise.
    """
    t = policy.trim
    q = F.col("q")
    if t.method == "robust":
        centre, scale = q[2], (q[3] - q[1]) / IQR_TO_SIGMA
        lo, hi = centre - t.k * scale, centre + t.k * scale
    elif t.method == "sd":
        centre, scale = F.col("mean_log"), F.col("sd_log_all")
        lo, hi = centre - t.k * scale, centre + t.k * scale
    elif t.method == "percentile":
        centre, scale = q[2], F.lit(None).cast("double")
        lo, hi = q[0], q[4]
    else:
        centre, scale, lo, hi = q[2], F.lit(None).cast("double"), F.lit(None), F.lit(None)
    small = F.col("n_cases") < t.min_cases
    return (
        stats.withColumn("centre", centre)
        .withColumn("scale", scale)
        .withColumn("lo", F.when(small, None).otherwise(lo).cast("double"))
        .withColumn("hi", F.when(small, None).otherwise(hi).cast("double"))
    )


def flag_inliers(cases: DataFrame, fences: DataFrame) -> DataFrame:
    """Each case with `inlier`: positive cost inside its DRG's fences (open fence = no bound)."""
    log_cost = F.ln("total_cost")
    inlier = (
        (F.col("total_cost") > 0)
        & (F.col("lo").isNull() | (log_cost >= F.col("lo")))
        & (F.col("hi").isNull() | (log_cost <= F.col("hi")))
    )
    small = F.broadcast(fences.select("drg", "lo", "hi"))
    return cases.join(small, "drg", "left").withColumn("inlier", F.coalesce(inlier, F.lit(False)))


def inlier_stats(flagged: DataFrame) -> DataFrame:
    """Per DRG: inlier count, mean and SD of cost, SD of ln cost."""
    inl = flagged.where("inlier")
    return inl.groupBy("drg").agg(
        F.count(F.lit(1)).alias("n_in"),
        exact_mean("total_cost").alias("trimmed_mean_cost"),
        exact_stddev("total_cost").alias("sd_in_cost"),
        exact_stddev(F.ln("total_cost")).alias("sd_log_cost"),
    )


def tail_corrected_mean(df: DataFrame, policy: Policy) -> DataFrame:
    """`cost_est`: the inlier mean divided by the lognormal mean share kept between the fences.

    For ln cost ~ N(c, s^2) and fences c + a s, c + b s: E[X | kept] = E[X] (Phi(b - s) - Phi(a - s)) /
    (Phi(b) - Phi(a)). Only the symmetric k-fence methods are corrected; untrimmed DRGs need nothing.
    """
    correctable = policy.trim.tail_correction and policy.trim.method in ("robust", "sd")
    if not correctable:
        return df.withColumn("cost_est", F.col("trimmed_mean_cost"))
    s = F.col("scale")
    a = (F.col("lo") - F.col("centre")) / s
    b = (F.col("hi") - F.col("centre")) / s
    kept_share = normal_cdf(b) - normal_cdf(a)
    kept_mass = normal_cdf(b - s) - normal_cdf(a - s)
    factor = F.when(F.col("lo").isNull() | (s <= 0) | s.isNull(), 1.0).otherwise(kept_share / kept_mass)
    return df.withColumn("cost_est", F.col("trimmed_mean_cost") * factor)


def borrow_strength(df: DataFrame, policy: Policy) -> DataFrame:
    """Low-volume DRGs: shrink cost_est towards their ADRG's, or take the previous weight.

    The ADRG's cost is the inlier-weighted mean of its DRGs' estimates; w = n / (n + prior_cases).
    `previous` keeps a known previous weight (rescaled to this year's overall cost by the caller's
    normalisation); without one it falls back to shrinkage. Sets `low_volume` and `method`.
    """
    lv = policy.low_volume
    n_in = F.coalesce(F.col("n_in"), F.lit(0))
    adrg = (
        df.where(F.col("cost_est").isNotNull())
        .groupBy("adrg")
        .agg((exact_sum(F.col("n_in") * F.col("cost_est")) / F.sum("n_in")).alias("adrg_cost"))
    )
    w = n_in / (n_in + F.lit(lv.prior_cases))
    shrunk = F.when(F.col("cost_est").isNull(), F.col("adrg_cost")).otherwise(
        w * F.col("cost_est") + (1 - w) * F.coalesce(F.col("adrg_cost"), F.col("cost_est"))
    )
    low = n_in < lv.min_cases
    use_prev = low & F.lit(lv.method == "previous") & F.col("prev_rw").isNotNull()
    return (
        df.join(adrg, "adrg", "left")
        .withColumn("low_volume", low)
        .withColumn(
            "method",
            F.when(~low, "own")
            .when(use_prev, "previous")
            .when(F.col("cost_est").isNull(), "adrg_only")
            .otherwise("shrunk_to_adrg"),
        )
        .withColumn("cost_est", F.when(low & ~use_prev, shrunk).otherwise(F.col("cost_est")))
        .drop("adrg_cost")
    )


def _normalise(df: DataFrame, col: str, target: float, fixed: Column | None = None) -> DataFrame:
    """Scale `col` so the n_cases-weighted mean is `target`, moving only rows where `fixed` is false."""
    fixed = fixed if fixed is not None else F.lit(False)
    row = df.agg(
        exact_sum(F.when(fixed, F.col("n_cases") * F.col(col)).otherwise(0.0)).alias("fixed_sum"),
        exact_sum(F.when(~fixed, F.col("n_cases") * F.col(col)).otherwise(0.0)).alias("free_sum"),
        F.sum("n_cases").alias("n"),
    ).first()
    if not row["free_sum"]:
        return df
    factor = (target * row["n"] - row["fixed_sum"]) / row["free_sum"]
    return df.withColumn(col, F.when(fixed, F.col(col)).otherwise(F.col(col) * F.lit(factor)))


def apply_change_cap(df: DataFrame, policy: Policy, rounds: int = 4) -> DataFrame:
    """Clamp rw to [prev (1 - max_decrease), prev (1 + max_increase)], budget-neutrally.

    Capped DRGs are held fixed and the others rescaled so the case-weighted mean stays on target; a
    rescale can push another DRG past its cap, hence a few rounds (on a table of a few hundred rows).
    """
    cap = policy.change_cap
    if cap.max_decrease is None and cap.max_increase is None:
        return df.withColumn("capped", F.lit(False))
    lower = F.col("prev_rw") * (1 - cap.max_decrease) if cap.max_decrease is not None else None
    upper = F.col("prev_rw") * (1 + cap.max_increase) if cap.max_increase is not None else None
    df = df.withColumn("capped", F.lit(False))
    for _ in range(rounds):
        rw = F.col("rw")
        if lower is not None:
            rw = F.when(F.col("prev_rw").isNotNull() & (rw < lower), lower).otherwise(rw)
        if upper is not None:
            rw = F.when(F.col("prev_rw").isNotNull() & (F.col("rw") > upper), upper).otherwise(rw)
        df = df.withColumn("capped", F.col("capped") | (F.abs(rw - F.col("rw")) > 1e-12)).withColumn("rw", rw)
        df = _normalise(df, "rw", policy.normalisation_target, fixed=F.col("capped")).localCheckpoint()
    return df


def relative_weights(
    cases: DataFrame, policy: Policy, previous: DataFrame | None = None
) -> tuple[DataFrame, DataFrame]:
    """The per-DRG weights (schemas.pricing.DRG_WEIGHTS columns, without run stamps) and the cases
    flagged `inlier` (for trimmed statistics downstream).

    `cases`: priced cases with drg, adrg, mdc, total_cost, los_days. `previous`: (drg, prev_rw) or None.
    """
    # The per-DRG tables are materialised as soon as they exist: each later step (normalisation, caps,
    # the overall mean) reads them on the driver, and would otherwise re-aggregate every case each time.
    stats = trim_fences(drg_descriptives(cases), policy).localCheckpoint()
    flagged = flag_inliers(cases, stats)
    df = stats.join(inlier_stats(flagged), "drg", "left")
    df = tail_corrected_mean(df, policy)
    if previous is not None:
        df = df.join(F.broadcast(previous.select("drg", "prev_rw")), "drg", "left")
    else:
        df = df.withColumn("prev_rw", F.lit(None).cast("double"))
    df = df.localCheckpoint()
    # The inlier mean over all cases, from the per-DRG inlier sums rather than another pass over cases.
    overall = df.agg(exact_sum(F.col("n_in") * F.col("trimmed_mean_cost")) / F.sum("n_in")).first()[0] or 1.0
    df = borrow_strength(df, policy)
    # 'previous' DRGs enter on this year's scale: their old weight times the overall mean cost.
    df = df.withColumn(
        "cost_est", F.when(F.col("method") == "previous", F.col("prev_rw") * overall).otherwise(F.col("cost_est"))
    ).where(F.col("cost_est").isNotNull())
    df = df.withColumn("rw_raw", F.col("cost_est") / F.lit(overall)).withColumn("rw", F.col("rw_raw"))
    df = _normalise(df, "rw", policy.normalisation_target).localCheckpoint()
    df = apply_change_cap(df, policy)
    z = NormalDist().inv_cdf(0.5 + policy.ci_level / 2)
    rel_se = F.try_divide(F.col("sd_in_cost"), F.col("trimmed_mean_cost") * F.sqrt(F.col("n_in")))
    n_in = F.coalesce(F.col("n_in"), F.lit(0)).cast("long")
    weights = df.select(
        "drg",
        "adrg",
        "mdc",
        F.col("n_cases").cast("long").alias("n_cases"),
        (F.col("n_cases") - n_in).cast("long").alias("n_trimmed"),
        "mean_cost",
        "median_cost",
        "sd_cost",
        "cv_cost",
        "trimmed_mean_cost",
        "sd_log_cost",
        "mean_los",
        "median_los",
        "sd_los",
        "cv_los",
        "rw_raw",
        "rw",
        (F.col("rw") * (1 - z * rel_se)).alias("rw_ci_low"),
        (F.col("rw") * (1 + z * rel_se)).alias("rw_ci_high"),
        "prev_rw",
        (F.try_divide(F.col("rw"), F.col("prev_rw")) - 1).alias("rw_change"),
        "low_volume",
        "method",
        "capped",
    )
    return weights, flagged
