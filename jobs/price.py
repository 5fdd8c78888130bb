"""`drg price`: grouped, priceable cases -> relative weights, base rates, case payments, indices.

Why the gold tables are replaced per run id (replaceWhere `run_id = ...`) rather than overwritten: the
publish stage promotes the rows of one run, so several runs' results must coexist; re-running a run id
replaces exactly its own rows and changes nothing else.

Inputs: gold.grouped_cases (ungroupable cases never priced), silver.case_quality when present (only
priceable cases), previous weights from the latest published release or the policy's CSV (for the
change cap and the `previous` low-volume method).
"""

from __future__ import annotations

from datetime import date
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.conform import stamped
from jobs.errors import PipelineError
from jobs.joins import materialised_lookup
from jobs.pricing.indices import grouping_quality, hospital_indices
from jobs.pricing.payments import base_rates, budget_check, case_payments, classify_and_unit, with_hospital_coef
from jobs.pricing.policy import Policy, load_policy
from jobs.pricing.weights import relative_weights
from jobs.published import read_log, release_frame
from jobs.runs import minted, new_run_id
from schemas.discharge import CASE_KEY
from schemas.pricing import TABLES

NEEDED = ("region_code", "hospital_id", "case_id", "drg", "adrg", "mdc", "payer", "los_days", "total_cost")


def priced_cases(spark: SparkSession, lake: str, policy: Policy) -> DataFrame:
    """Grouped cases that set weights and get paid: grouped, priceable, in the policy's regions/period."""
    grouped = lk.read(spark, lake, "gold", "grouped_cases")
    missing = [c for c in (*NEEDED, "ungroupable_reason") if c not in grouped.columns]
    if missing:
        raise PipelineError(f"table gold.grouped_cases lacks column(s) {', '.join(missing)}")
    cases = grouped.where(F.col("ungroupable_reason").isNull() & F.col("drg").isNotNull())
    if policy.regions:
        cases = cases.where(F.col("region_code").isin(*policy.regions))
    period = policy.reference_period
    if period.start or period.end or period.last_years:
        if "discharge_date" not in grouped.columns:
            raise PipelineError("policy sets reference_period but gold.grouped_cases has no discharge_date")
        if period.start:
            cases = cases.where(F.col("discharge_date") >= F.lit(period.start))
        if period.end:
            cases = cases.where(F.col("discharge_date") <= F.lit(period.end))
        if period.last_years:
            latest = cases.agg(F.max("discharge_date")).first()[0]
            if latest is not None:
                first = date(latest.year - period.last_years + 1, 1, 1)
                cases = cases.where(F.col("discharge_date") >= F.lit(first))
    quality_path = lk.table_path(lake, "silver", "case_quality")
    if lk.exists(spark, quality_path):
        # Only priceable cases: those of validated batches without an error-severity flag. The
        # unpriceable are a small share, so they are anti-joined by broadcast and the window's cases are
        # never shuffled against all of case_quality (which a semi-join on the priceable would do).
        quality = lk.read(spark, lake, "silver", "case_quality")
        validated = F.broadcast(quality.select("region_code", "batch_id").distinct())
        unpriceable = materialised_lookup(quality.where(~F.col("priceable")).select(*CASE_KEY))
        cases = (cases.join(validated, ["region_code", "batch_id"], "left_semi")
                 .join(unpriceable, list(CASE_KEY), "left_anti"))
    pack = F.col("pack_version") if "pack_version" in grouped.columns else F.lit(None).cast("string")
    return cases.select(
        *NEEDED[:6],
        F.lower(F.trim("payer")).alias("fund"),
        F.col("los_days").cast("double").alias("los_days"),
        F.col("total_cost").cast("double").alias("total_cost"),
        pack.alias("pack_version"),
    )


def previous_weights(spark: SparkSession, lake: str, policy: Policy) -> DataFrame | None:
    """(drg, prev_rw): the latest published release's weights, else the policy's CSV, else None."""
    log = read_log(spark, lake)
    if any(r.get("status") == "complete" for r in log):
        return release_frame(spark, lake, "drg_weights").select("drg", F.col("rw").cast("double").alias("prev_rw"))
    path = policy.previous_csv_path()
    if path is None:
        return None
    if not path.is_file():
        raise PipelineError(f"policy previous_weights.csv not found: {path}")
    raw = spark.read.option("header", True).csv(str(path))
    value = "weight" if "weight" in raw.columns else "rw"
    if "drg" not in raw.columns or value not in raw.columns:
        raise PipelineError(f"{path}: previous weights need columns drg and weight (or rw)")
    if policy.previous_weights.year is not None:
        if "year" not in raw.columns:
            raise PipelineError(f"{path}: policy sets previous_weights.year but the CSV has no year column")
        raw = raw.where(F.col("year").try_cast("int") == policy.previous_weights.year)
    return raw.select(F.trim("drg").alias("drg"), F.col(value).try_cast("double").alias("prev_rw")).where(
        F.col("prev_rw") > 0
    )


def price(spark: SparkSession, lake: str, policy: Policy, run_id: str) -> dict[str, DataFrame]:
    """All five gold tables of one pricing run, as DataFrames (not yet written)."""
    return price_run(spark, lake, policy, run_id)[0]


def price_run(spark: SparkSession, lake: str, policy: Policy, run_id: str) -> tuple[dict[str, DataFrame], DataFrame]:
    """The five gold tables of one pricing run (not yet written) and the priced cases they come from.

    The priced cases (checkpointed: region, hospital, DRG tree, LOS, cost, RW, payment per case) are what
    publishing's statistics aggregate; the nightly hands them over (jobs.publish `cases=`), so the
    window's cases are not read back from gold.case_payments and joined to gold.grouped_cases for LOS.
    """
    cases = priced_cases(spark, lake, policy).localCheckpoint()
    if cases.isEmpty():
        raise PipelineError("no priceable grouped cases in gold.grouped_cases for this policy: nothing to price")
    weights, flagged = relative_weights(cases, policy, previous_weights(spark, lake, policy))
    pack = cases.agg(F.max("pack_version")).first()[0]
    weights = weights.withColumn("pack_version", F.lit(pack)).localCheckpoint()

    rw = F.broadcast(weights.select("drg", "rw"))
    units = classify_and_unit(with_hospital_coef(cases.join(rw, "drg"), policy), policy).localCheckpoint()
    rates = base_rates(units, policy)
    payments = case_payments(units, rates).localCheckpoint()
    rates = budget_check(rates, payments)

    stamp = {"run_id": run_id, "policy_version": policy.version}
    inliers = flagged.where("inlier")
    frames = {
        "drg_weights": weights,
        "base_rates": rates,
        "case_payments": payments,
        "hospital_indices": hospital_indices(payments),
        "grouping_quality": grouping_quality(cases, inliers, weights),
    }
    return {name: stamped(df, stamp, [(f.name, f.dataType) for f in TABLES[name].fields])  # schemas.pricing
            for name, df in frames.items()}, payments


def write(frames: dict[str, DataFrame], lake: str, run_id: str) -> None:
    """Replace this run's rows in each gold table (one commit per table, stamped with the run id, the
    tables written at once); a run id this process minted has no rows yet, so they are appended."""
    lk.concurrently(
        partial(lk.replace_where, df, lk.table_path(lake, "gold", name), f"run_id = '{run_id}'", run_id,
                stats_columns=["run_id", "region_code", "drg"] if name == "case_payments" else None,  # per-case
                fresh=minted(run_id))
        for name, df in frames.items())


def register(sub) -> None:
    p = sub.add_parser("price", help="recalibrate weights and base rates, price cases, compute indices")
    p.add_argument("--lake", required=True, help="lake root directory")
    p.add_argument("--policy", help="policy YAML file or shipped policy name (default: chs-default)")
    p.add_argument("--run-id", help="run id to stamp (default: a new one)")
    p.set_defaults(func=run)


def run(args) -> int:
    from jobs.spark import get_spark

    policy = load_policy(args.policy)
    run_id = args.run_id or new_run_id()
    spark = get_spark("drg-price")
    frames = price(spark, args.lake, policy, run_id)
    write(frames, args.lake, run_id)
    rates = frames["base_rates"].orderBy("region_code", "fund").collect()
    quality = frames["grouping_quality"].first()
    print(
        f"price: run {run_id}, policy {policy.version}: {quality['n_cases']} cases, {quality['n_drgs']} DRGs, "
        f"RIV cost {_num(quality['riv_cost'])} (trimmed {_num(quality['riv_cost_trimmed'])}), "
        f"LOS {_num(quality['riv_los'])}, {quality['n_drgs_cv_gt_1']} DRGs with CV > 1"
    )
    for r in rates:
        print(
            f"  {r['region_code']} {r['fund']}: base rate {_num(r['base_rate'], 2)} yuan, "
            f"budget {_num(r['budget'], 2)}, gap {_num(r['budget_gap_pct'], 4)}%"
        )
    return 0


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
