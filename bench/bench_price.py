"""Recovery of Harbin's published weights from cases grouped by Harbin's own scheme.

Cases are drawn by the generator (jobs.synth) for the shipped `haerbin-2022` pack (OpenDRG's haerbin_2022
imported with Harbin's published 2022 weights, 538 of 538 DRGs matched) with the pack's reference weights
as true weights, the generator's lognormal cost noise, hospital cost levels and 2% high / 1% low
outliers, then grouped by the grouper with that pack (jobs.pricing.sim.scheme_cases). Three estimators
are compared on DRGs with >= 400 grouped cases, after normalising true and estimated weights to the same
case mix: the default policy (robust IQR trim on ln cost + tail correction), a naive mean (no trim) and a
plain mean +/- 3 SD trim of ln cost.

Usage:
    DRG_DRIVER_MEMORY=3g python bench/bench_price.py --n 200000
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

from jobs.pricing.policy import load_policy
from jobs.pricing.sim import recovery_errors, scheme_cases
from jobs.pricing.weights import relative_weights
from jobs.spark import get_spark

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "price_recovery.json"


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
    parser.add_argument("--n", type=int, default=200000, help="cases to generate and group")
    parser.add_argument("--pack", default="haerbin-2022", help="pack with published reference weights")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--min-cases", type=int, default=400, help="DRGs compared: at least this many cases")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    spark = get_spark("bench-price")
    cases, truth = scheme_cases(spark, args.pack, args.n, seed=args.seed)
    cases = cases.localCheckpoint()
    n = cases.count()
    result = {
        "cases": n,
        "drgs": truth.count(),
        "pack": args.pack,
        "seed": args.seed,
        "estimators": {},
    }
    for name, policy in variants().items():
        start = time.perf_counter()
        weights = relative_weights(cases, policy)[0].localCheckpoint()
        err = recovery_errors(weights, truth, args.min_cases).agg(
            F.count(F.lit(1)).alias("drgs_compared"),
            F.median("abs_err").alias("median_abs_err"),
            F.max("abs_err").alias("max_abs_err"),
        )
        row = err.first().asDict()
        row["seconds"] = round(time.perf_counter() - start, 1)
        row["meets_criteria"] = bool(
            row["drgs_compared"] and row["median_abs_err"] <= 0.025 and row["max_abs_err"] <= 0.09
        )
        result["estimators"][name] = row
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
