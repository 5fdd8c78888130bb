"""Spark schemas of the pricing stage's gold tables: the numbers a payer publishes.

Why one module: the pricing stage writes these tables and the publish stage reads them; both import the
schemas from here so a renamed or retyped column fails loudly in tests instead of drifting silently.
Every table carries `run_id` and `policy_version` (the policy file's `version`), so a published weight
or rate can always be traced to the run and the policy that produced it. Money is `double` yuan.
"""

from __future__ import annotations

from pyspark.sql import types as T

S, D, L, B = T.StringType(), T.DoubleType(), T.LongType(), T.BooleanType()


def _schema(*cols: tuple[str, T.DataType, bool]) -> T.StructType:
    return T.StructType([T.StructField(name, kind, nullable) for name, kind, nullable in cols])


# One row per DRG with at least one priceable case (plus carried-forward DRGs when the policy keeps
# previous weights). Descriptive statistics live here too (no separate drg_stats table).
DRG_WEIGHTS = _schema(
    ("drg", S, False),
    ("adrg", S, True),
    ("mdc", S, True),
    ("n_cases", L, False),  # priceable cases in the reference period
    ("n_trimmed", L, False),  # cases excluded by the within-DRG trim
    ("mean_cost", D, True),  # untrimmed mean total cost (yuan)
    ("median_cost", D, True),
    ("sd_cost", D, True),
    ("cv_cost", D, True),  # sd_cost / mean_cost, untrimmed
    ("trimmed_mean_cost", D, True),  # mean cost of the inliers (yuan)
    ("sd_log_cost", D, True),  # SD of ln(cost) of the inliers
    ("mean_los", D, True),  # ALOS, untrimmed (days)
    ("median_los", D, True),
    ("sd_los", D, True),
    ("cv_los", D, True),
    ("rw_raw", D, True),  # trimmed mean / overall trimmed mean, before low-volume, cap, normalisation
    ("rw", D, False),  # the published relative weight
    ("rw_ci_low", D, True),  # 95% confidence interval of rw (delta method on the trimmed mean)
    ("rw_ci_high", D, True),
    ("prev_rw", D, True),  # previously published weight, when known
    ("rw_change", D, True),  # rw / prev_rw - 1
    ("low_volume", B, False),  # fewer inliers than policy.min_cases
    ("method", S, False),  # own | shrunk_to_adrg | previous | adrg_only
    ("capped", B, False),  # the year-to-year change cap moved this weight
    ("run_id", S, False),
    ("policy_version", S, False),
    ("pack_version", S, True),
)

# One row per region and fund.
BASE_RATES = _schema(
    ("region_code", S, False),
    ("fund", S, False),  # employee | resident
    ("budget", D, False),  # yuan, from the policy
    ("sum_rw_coef", D, False),  # sum over cases of payment units (RW x coef, outlier-adjusted)
    ("n_cases", L, False),
    ("base_rate", D, False),  # yuan per unit of weight: budget / sum_rw_coef
    ("expected_payment", D, False),  # sum of case payments at this rate (yuan)
    ("budget_gap_pct", D, False),  # (expected_payment - budget) / budget x 100
    ("run_id", S, False),
    ("policy_version", S, False),
)

# One row per priced case. A run that settled cases at an earlier run's weights (recalibration on a
# schedule) writes them under that run's id: the rows of a calibration run are every case priced at it.
CASE_PAYMENTS = _schema(
    ("region_code", S, False),
    ("hospital_id", S, False),
    ("case_id", S, False),
    ("batch_id", S, True),  # the delivery the case came in (a later night settles its own batches)
    ("fund", S, True),
    ("drg", S, False),
    ("rw", D, False),
    ("hospital_coef", D, False),
    ("outlier_type", S, False),  # normal | high | low
    ("payment_units", D, False),  # RW x coef after outlier adjustment
    ("base_rate", D, True),
    ("payment", D, True),  # yuan
    ("total_cost", D, True),
    ("payment_minus_cost", D, True),
    ("run_id", S, False),
    ("policy_version", S, False),
)

# One row per region and hospital.
HOSPITAL_INDICES = _schema(
    ("region_code", S, False),
    ("hospital_id", S, False),
    ("n_cases", L, False),
    ("total_weight", D, False),  # sum of RW
    ("cmi", D, False),  # total_weight / n_cases
    ("cost_efficiency_index", D, True),  # sum_d n_hd (e_hd / E_d) / sum_d n_hd, e/E mean cost
    ("time_efficiency_index", D, True),  # the same with mean LOS
    ("high_outlier_share", D, False),
    ("low_outlier_share", D, False),
    ("total_payment", D, True),
    ("total_cost", D, True),
    ("run_id", S, False),
    ("policy_version", S, False),
)

# One row per run.
GROUPING_QUALITY = _schema(
    ("run_id", S, False),
    ("n_cases", L, False),
    ("n_drgs", L, False),
    ("riv_cost", D, True),  # R^2 of cost explained by DRG, all priceable cases
    ("riv_cost_trimmed", D, True),  # the same on the trim inliers
    ("riv_los", D, True),
    ("n_drgs_cv_gt_1", L, False),
    ("drgs_cv_gt_1", T.ArrayType(S), False),
    ("policy_version", S, False),
)

# One row per pricing run and region: which calibration the run's weights and rates are (its own, or
# the run it settled at), and the region's cost per unit of weight that classifies outliers.
CALIBRATIONS = _schema(
    ("region_code", S, False),
    ("cost_per_rw", D, True),  # the calibration's total cost / total RW (outlier thresholds)
    ("calibration_id", S, False),  # equal for equal calibration batches, policy and schedule
    ("calibration_run_id", S, False),  # the run that estimated these weights (this one when it did)
    ("recalibration", S, False),  # night | month | quarter | year
    ("period_start", T.DateType(), True),  # the payment period the weights are in force for
    ("n_batches", L, True),  # calibration batches (null: every batch)
    ("window_first", T.DateType(), True),  # first discharge date of the reference window
    ("run_id", S, False),
    ("policy_version", S, False),
)

TABLES = {
    "drg_weights": DRG_WEIGHTS,
    "base_rates": BASE_RATES,
    "case_payments": CASE_PAYMENTS,
    "hospital_indices": HOSPITAL_INDICES,
    "grouping_quality": GROUPING_QUALITY,
    "calibrations": CALIBRATIONS,
}
