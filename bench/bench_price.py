"""Recovery of known weights: simulate cases from the Harbin 2024 weights, recalibrate, compare.

Cases are generated in Spark from `../shared/reference/chs-drg-1.1/published_weights_harbin.csv` (year
2024) with mean-one lognormal cost noise, hospital cost levels, a few per cent of gross high costs (5-20x)
and near-zero costs (0.1-5%). Three estimators are compared on DRGs with >= 400 cases, after normalising
true and estimated weights to the same case mix: the default policy (robust IQR trim on ln cost + tail
correction), a naive mean (no trim) and a plain mean +/- 3 SD trim of ln cost.

Usage (the lead runs the large sizes on a quiet machine):
    DRG_DRIVER_MEMORY=3g python bench/bench_price.py --n 40000 --drgs 60
    python bench/bench_price.py --n 1000000            # all 703 DRGs
Writes bench/results/price_recovery.json (and prints it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing it

from jobs.pricing_policy import load_policy
from jobs.pricing_sim import recovery_errors, simulate_cases
from jobs.pricing_weights import relative_weights
from jobs.spark import get_spark

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT.parent / "shared" / "reference" / "chs-drg-1.1" / "published_weights_harbin.csv"
OUT = ROOT / "bench" / "results" / "price_recovery.json"


def true_weights(spark, drgs: int | None, seed: int):
    """Harbin 2024 weights with volume shares ~ RW^-0.8 x lognormal(1.0): dear groups are rarer."""
    if not WEIGHTS.is_file():
        raise SystemExit(f"reference weights not found at {WEIGHTS} (provided beside the repo)")
    df = (
        spark.read.option("header", True)
        .csv(str(WEIGHTS))
        .where(F.col("year") == "2024")
        .select("drg", F.col("weight").try_cast("double").alias("true_rw"))
        .where(F.col("true_rw") > 0)
        .withColumn("share", F.pow("true_rw", -0.8) * F.exp(F.randn(seed) * 1.0))
    )
    if drgs:
        df = df.orderBy(F.rand(seed + 1)).limit(drgs)
    return df.localCheckpoint()


def variants():
    base = load_policy()
    trim = base.trim
    return {
        "robust_default": base,
        "naive_mean": base.model_copy(update={"trim": trim.model_copy(update={"method": "none"})}),
        "plain_3sd": base.model_copy(
            update={"trim": trim.model_copy(update={"method": "sd", "tail_correction": False})}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40000, help="cases to simulate")
    parser.add_argument("--drgs", type=int, default=60, help="random subset of DRGs (0 = all 703)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sigma", type=float, default=0.5, help="SD of ln cost noise")
    parser.add_argument("--high-share", type=float, default=0.03)
    parser.add_argument("--low-share", type=float, default=0.02)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    spark = get_spark("bench-price")
    truth = true_weights(spark, args.drgs or None, args.seed)
    cases = simulate_cases(
        truth, args.n, seed=args.seed, sigma=args.sigma, high_share=args.high_share, low_share=args.low_share
    ).localCheckpoint()
    n = cases.count()
    result = {
        "cases": n,
        "drgs": truth.count(),
        "sigma": args.sigma,
        "high_share": args.high_share,
        "low_share": args.low_share,
        "seed": args.seed,
        "estimators": {},
    }
    for name, policy in variants().items():
        start = time.perf_counter()
        weights = relative_weights(cases, policy)[0].localCheckpoint()
        err = recovery_errors(weights, truth, 400).agg(
            F.count(F.lit(1)).alias("drgs_ge_400"),
            F.median("abs_err").alias("median_abs_err"),
            F.max("abs_err").alias("max_abs_err"),
        )
        row = err.first().asDict()
        row["seconds"] = round(time.perf_counter() - start, 1)
        row["meets_criteria"] = bool(
            row["drgs_ge_400"] and row["median_abs_err"] <= 0.025 and row["max_abs_err"] <= 0.09
        )
        result["estimators"][name] = row
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
