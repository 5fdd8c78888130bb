"""`drg price`: grouped, priceable cases -> relative weights, base rates, case payments, indices.

Why the gold tables are replaced per run id (replaceWhere `run_id = ...`) rather than overwritten: the
publish stage promotes the rows of one run, so several runs' results must coexist; re-running a run id
replaces exactly its own rows and changes nothing else. A night that settles new batches at an earlier
calibration (recalibration on a schedule, jobs/pricing/calibration.py) adds their payments to the
calibration run's rows instead, replacing those batches' rows only.

Inputs: gold.grouped_cases (ungroupable cases never priced), silver.case_quality when present (only
priceable cases), previous weights from the latest published release or the policy's CSV (for the
change cap and the `previous` low-volume method).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.conform import stamped
from jobs.errors import PipelineError
from jobs.joins import materialised_lookup
from jobs.night_plan import BatchKey, batch_predicate, lake_batches
from jobs.pricing.calibration import (
    Calibration,
    Settlement,
    calibration,
    in_calibration,
    previous_release,
)
from jobs.pricing.indices import grouping_quality, hospital_indices
from jobs.pricing.payments import (
    base_rates,
    budget_check,
    case_payments,
    classify_and_unit,
    cost_per_rw,
    with_hospital_coef,
)
from jobs.pricing.policy import Policy, load_policy
from jobs.pricing.weights import relative_weights
from jobs.published import release_frame
from jobs.runs import minted, new_run_id
from schemas.discharge import CASE_KEY
from schemas.pricing import TABLES

NEEDED = ("region_code", "hospital_id", "case_id", "drg", "adrg", "mdc", "payer", "los_days", "total_cost")


def priced_cases(
    spark: SparkSession, lake: str, policy: Policy, cal: Calibration | None = None,
    batches: list[BatchKey] | None = None, window_first: date | None = None,
) -> tuple[DataFrame, date | None]:
    """Grouped cases that get paid (grouped, priceable, in the policy's regions and period) and the
    first discharge date of the reference window (`last_years`, counted back from the latest discharge
    among the calibration's cases, `cal`; all cases without one).

    `batches`: only these batches' cases, with `window_first` as the window (a night settling its new
    cases at a calibration made before).
    """
    grouped = lk.read(spark, lake, "gold", "grouped_cases")
    missing = [c for c in (*NEEDED, "ungroupable_reason") if c not in grouped.columns]
    if missing:
        raise PipelineError(f"table gold.grouped_cases lacks column(s) {', '.join(missing)}")
    cases = grouped.where(F.col("ungroupable_reason").isNull() & F.col("drg").isNotNull())
    if batches is not None:
        cases = cases.where(batch_predicate(batches))
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
        if period.last_years and batches is None:
            latest = in_calibration(cases, cal).agg(F.max("discharge_date")).first()[0] if cal else None
            window_first = None if latest is None else date(latest.year - period.last_years + 1, 1, 1)
        if window_first is not None:
            cases = cases.where(F.col("discharge_date") >= F.lit(window_first))
    quality_path = lk.table_path(lake, "silver", "case_quality")
    if lk.exists(spark, quality_path):
        # Only priceable cases: those of validated batches without an error-severity flag. The
        # unpriceable are a small share, so they are anti-joined by broadcast and the window's cases are
        # never shuffled against all of case_quality (which a semi-join on the priceable would do).
        quality = lk.read(spark, lake, "silver", "case_quality")
        if batches is not None:
            quality = quality.where(batch_predicate(batches))
        validated = F.broadcast(quality.select("region_code", "batch_id").distinct())
        unpriceable = materialised_lookup(quality.where(~F.col("priceable")).select(*CASE_KEY))
        cases = (cases.join(validated, ["region_code", "batch_id"], "left_semi")
                 .join(unpriceable, list(CASE_KEY), "left_anti"))
    pack = F.col("pack_version") if "pack_version" in grouped.columns else F.lit(None).cast("string")
    return cases.select(
        *NEEDED[:6],
        "batch_id",
        F.lower(F.trim("payer")).alias("fund"),
        F.col("los_days").cast("double").alias("los_days"),
        F.col("total_cost").cast("double").alias("total_cost"),
        pack.alias("pack_version"),
    ), window_first


def previous_weights(
    spark: SparkSession, lake: str, policy: Policy, calibration_id: str | None = None
) -> DataFrame | None:
    """(drg, prev_rw): the weights of the latest release of another calibration, else the policy's
    CSV, else None."""
    previous = previous_release(spark, lake, calibration_id)
    if previous is not None:
        weights = release_frame(spark, lake, "drg_weights", previous)
        return weights.select("drg", F.col("rw").cast("double").alias("prev_rw"))
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


@dataclass
class Priced:
    """One pricing run's gold tables (not yet written) and what publishing needs of it."""

    frames: dict[str, DataFrame]
    cases: DataFrame | None  # the calibration's priced cases; None: the run settled, nothing to publish
    calibration: Calibration
    settlement: Settlement | None = None  # the settled batches and the release they were paid at
    settled_cases: DataFrame | None = None  # the settled batches' priceable cases, paid or not


def price_run(
    spark: SparkSession, lake: str, policy: Policy, run_id: str,
    cal: Calibration | None = None, settle: Settlement | None = None,
) -> Priced:
    """The gold tables of one pricing run (not yet written) and the calibration's priced cases.

    `cal`: the calibration (chosen from bronze.batches when None, jobs.pricing.calibration). `settle`: the
    night's new batches and the release in force, when tonight's calibration is still that release's
    (`settlement`): only these batches are priced, at its weights, and the priced cases returned are
    None: there is nothing new to publish.

    The priced cases (checkpointed: region, hospital, DRG tree, LOS, cost, RW, payment per case) are what
    publishing's statistics aggregate; the nightly hands them over (jobs.publish `cases=`), so the
    window's cases are not read back from gold.case_payments and joined to gold.grouped_cases for LOS.
    """
    cal = cal or calibration(lake_batches(spark, lake), policy)
    if settle is not None:
        frames, cases = settled(spark, lake, policy, run_id, settle)
        return Priced(frames, None, cal, settle, cases)
    cases, window_first = priced_cases(spark, lake, policy, cal)
    cases = cases.localCheckpoint()
    if cases.isEmpty():
        raise PipelineError("no priceable grouped cases in gold.grouped_cases for this policy: nothing to price")
    calibrating = in_calibration(cases, cal)
    weights, flagged = relative_weights(calibrating, policy, previous_weights(spark, lake, policy, cal.calibration_id))
    pack = calibrating.agg(F.max("pack_version")).first()[0]
    weights = weights.withColumn("pack_version", F.lit(pack)).localCheckpoint()

    rw = F.broadcast(weights.select("drg", "rw"))
    per_rw = cost_per_rw(calibrating.join(rw, "drg")).localCheckpoint()
    units = classify_and_unit(with_hospital_coef(cases.join(rw, "drg"), policy), policy, per_rw).localCheckpoint()
    rates = base_rates(in_calibration(units, cal), policy)
    payments = case_payments(units, rates).localCheckpoint()
    paid = in_calibration(payments, cal)
    rates = budget_check(rates, paid)

    stamp = {"run_id": run_id, "policy_version": policy.version}
    inliers = flagged.where("inlier")
    every = policy.recalibration.every
    n_batches = None if cal.batches is None else len(cal.batches)
    frames = {
        "drg_weights": weights,
        "base_rates": rates,
        "case_payments": payments,
        "hospital_indices": hospital_indices(paid),
        "grouping_quality": grouping_quality(calibrating, inliers, weights),
        "calibrations": per_rw.withColumns({
            "calibration_id": F.lit(cal.calibration_id), "calibration_run_id": F.lit(run_id),
            "recalibration": F.lit(every), "period_start": F.lit(cal.period_start).cast("date"),
            "n_batches": F.lit(n_batches).cast("long"), "window_first": F.lit(window_first).cast("date")}),
    }
    return Priced({name: stamped(df, stamp, [(f.name, f.dataType) for f in TABLES[name].fields])  # schemas.pricing
                   for name, df in frames.items()}, paid, cal)


def settled(spark: SparkSession, lake: str, policy: Policy, run_id: str,
            settle: Settlement) -> tuple[dict[str, DataFrame], DataFrame]:
    """The new batches' cases priced at the release's run's weights, rates and cost per unit of weight, as
    that run's gold.case_payments rows (so a calibration run's rows are every case paid at it), and this
    run's gold.calibrations rows, which say whose weights it used; and the batches' priceable cases."""
    calibrated = settle.run_id

    def of_run(table: str) -> DataFrame:
        return lk.read(spark, lake, "gold", table).where(F.col("run_id") == calibrated)

    cal = of_run("calibrations").localCheckpoint()
    window_first = cal.agg(F.max("window_first")).first()[0]
    cases, _ = priced_cases(spark, lake, policy, batches=list(settle.batches), window_first=window_first)
    rw = F.broadcast(of_run("drg_weights").select("drg", "rw"))
    per_rw = cal.select("region_code", "cost_per_rw")
    units = classify_and_unit(with_hospital_coef(cases.join(rw, "drg"), policy), policy, per_rw)
    payments = case_payments(units, of_run("base_rates").select("region_code", "fund", "base_rate"))
    return {
        "case_payments": stamped(payments, {"run_id": calibrated, "policy_version": policy.version},
                                 [(f.name, f.dataType) for f in TABLES["case_payments"].fields]),
        "calibrations": cal.withColumn("run_id", F.lit(run_id)),
    }, cases


def write(priced: Priced, lake: str, run_id: str) -> None:
    """Replace this run's rows in each gold table (one commit per table, stamped with the run id, the
    tables written at once); a run id this process minted has no rows yet, so they are appended.

    A settling run's payments are its batches' rows of the calibration run: replacing exactly them keeps
    a re-run, or a night redone after a failure, from paying a case twice.
    """
    def replace(name: str, df: DataFrame) -> None:
        where, fresh = f"run_id = '{run_id}'", minted(run_id)
        if name == "case_payments" and priced.settlement is not None:
            where, fresh = priced.settlement.where, False
        lk.replace_where(df, lk.table_path(lake, "gold", name), where, run_id, fresh=fresh,
                         stats_columns=["run_id", "region_code", "drg"] if name == "case_payments" else None,
                         merge_schema=name == "case_payments")  # batch_id came with scheduled recalibration

    lk.concurrently(partial(replace, name, df) for name, df in priced.frames.items())


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
    priced = price_run(spark, args.lake, policy, run_id)
    write(priced, args.lake, run_id)
    frames = priced.frames
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
