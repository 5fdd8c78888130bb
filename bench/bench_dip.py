"""DIP catalogue + scoring against DRG grouping, on the same generated cases, in one run.

For each size N: generate N cases over three discharge years (jobs.synth, `discharge_years: 3`) and
write them to Parquet with the generator's severity standing in for silver.case_quality's (not timed).
Then, on one Spark session, after one warm-up of each, REPEATS alternating timed runs of each (best
reported, all kept in the JSON; the machine may be shared):
- group: scan the Parquet, `group_cases` with the pack, write to the `noop` sink (as bench_group.py);
- dip: scan the same Parquet, `jobs.dip.stage.build` with the default policy (keys, the aggregating
  pass, catalogue, scores, point values, case scores, outliers, settlement, monitoring), and write all
  five tables to `noop`: everything `drg dip` does except reading silver and the Delta commits.
Also reported: packets (core / comprehensive), the share of cases in core packets, dip/group ratio.

Usage:
    DRG_SPARK_MASTER=local[2] DRG_DRIVER_MEMORY=3g python bench/bench_dip.py --sizes 20000
    python bench/bench_dip.py --sizes 1000000 --definitions /tmp/chs11   # `drg definitions import chs-1.1`
Writes bench/results/dip.json and bench/results/dip.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing it

from measure import peak_rss_mib  # bench/, the script's own folder

from jobs.definitions import load_pack
from jobs.dip import attributes as attr
from jobs.dip.policy import load_dip_policy
from jobs.dip.stage import build
from jobs.group import Lookups, group_cases
from jobs.spark import get_spark
from jobs.synth import generate
from jobs.synth.config import SynthConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "dip"
REPEATS = 2


def timed_group(data, pack, lookups) -> float:
    start = time.perf_counter()
    group_cases(data, pack, lookups).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def dip_cases(data):
    """The generated cases in the shape jobs.dip.cases.priceable_cases returns."""
    return data.select(
        "region_code", "hospital_id", "case_id", F.lower(F.trim("payer")).alias("fund"),
        F.year("discharge_date").alias("year"), F.col("total_cost").alias("cost"),
        F.col("los_days").cast("double").alias("los"), "principal_dx", "principal_proc", "other_procs",
        "severity",
    ).where(F.col("discharge_date").isNotNull() & F.col("total_cost").isNotNull())


def timed_dip(data, table, policy) -> tuple[float, object]:
    start = time.perf_counter()
    result = build(dip_cases(data), table, policy, "bench")
    for frame in result.frames.values():
        frame.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start, result


def run_size(spark, pack, lookups, n: int, seed: int) -> dict:
    path = WORK / f"cases_{n}.parquet"
    if not path.exists():
        config = SynthConfig.model_validate({**load_config().model_dump(), "discharge_years": 3})
        cases, truth, _ = generate(spark, n, regions=1, hospitals=40, seed=seed, pack=pack.path, config=config)
        severity = truth.select("region_code", "hospital_id", "case_id", F.col("true_severity").alias("severity"))
        (cases.where(~F.col("malformed_row")).drop("malformed_row").dropDuplicates(["region_code", "hospital_id",
                                                                                    "case_id"])
         .join(severity.dropDuplicates(["region_code", "hospital_id", "case_id"]),
               ["region_code", "hospital_id", "case_id"])
         .write.mode("overwrite").parquet(str(path)))
    data = spark.read.parquet(str(path))
    count = data.count()
    table = attr.attribute_table(spark, attr.read_rows())
    policy = load_dip_policy()
    timed_group(data, pack, lookups)  # warm-ups
    timed_dip(data, table, policy)
    group_runs, dip_runs = [], []
    for _ in range(REPEATS):
        group_runs.append(timed_group(data, pack, lookups))
        seconds, result = timed_dip(data, table, policy)
        dip_runs.append(seconds)
    summary = result.frames["dip_monitoring"].first()
    group_s, dip_s = min(group_runs), min(dip_runs)
    return {
        "cases": count,
        "group_s": round(group_s, 2),
        "dip_s": round(dip_s, 2),
        "dip_over_group": round(dip_s / group_s, 2),
        "dip_cases_per_s": round(count / dip_s),
        "group_runs_s": [round(t, 2) for t in group_runs],
        "dip_runs_s": [round(t, 2) for t in dip_runs],
        "core_packets": summary["n_core_packets"],
        "comprehensive_packets": summary["n_comprehensive_packets"],
        "core_share": round(summary["core_share"], 4),
        "base_years": result.base_years,
        "jvm_peak_rss_mb": round(peak_rss_mib(spark._jvm.java.lang.ProcessHandle.current().pid())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    ap.add_argument("--definitions", default="demo")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--note", default="", help="written into the results (e.g. 'machine shared')")
    args = ap.parse_args()
    os.environ.setdefault("DRG_SPARK_MASTER", "local[2]")
    spark = get_spark("bench-dip")
    pack = load_pack(spark, args.definitions)
    lookups = Lookups(pack)
    results = {
        "master": spark.sparkContext.master,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "spark": spark.version,
        "pack": f"{pack.name} {pack.version}",
        "note": args.note,
        "runs": [run_size(spark, pack, lookups, n, args.seed) for n in args.sizes],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dip.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"DIP benchmark: {results['pack']}, {results['master']}, Spark {results['spark']}"
        + (f" ({args.note})" if args.note else ""),
        "",
        "| cases | group s | dip s | dip/group | dip cases/s | core packets | comprehensive | core share | "
        "JVM peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['cases']:,} | {r['group_s']} | {r['dip_s']} | {r['dip_over_group']} | {r['dip_cases_per_s']:,} | "
            f"{r['core_packets']:,} | {r['comprehensive_packets']:,} | {r['core_share']} | {r['jvm_peak_rss_mb']} |"
            for r in results["runs"]
        ),
    ]
    (RESULTS / "dip.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
