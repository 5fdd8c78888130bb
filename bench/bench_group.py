"""Grouping throughput against its floor, on generated cases, in one run.

For each size N: generate N cases with the synthetic generator (jobs.synth) and write them to Parquet
(not timed), then time, on the same Spark session, after one warm-up run of each, three alternating
runs of each (the best of each is reported, all runs are kept in the JSON; shared machines are noisy):
- floor: scan the Parquet, explode secondary diagnoses and procedures, broadcast-join them to the pack's
  codes table, write to the `noop` sink (the bare cost of touching every code once);
- group: scan the Parquet, `group_cases` with the pack, write to `noop`.
Also reported: cases/s, group/floor ratio, the Spark JVM's CPU seconds of each run (user + system, all
threads; the best of each and their ratio, which a shared machine's load moves far less than wall time),
the load average before and after, peak resident memory of the Spark JVM (VmHWM; cumulative over the run)
and DRG agreement with the generator's intended DRG on cases without injected errors.

Usage (the lead runs the big sizes on a quiet 2-core machine):
    DRG_SPARK_MASTER=local[2] DRG_DRIVER_MEMORY=3g python bench/bench_group.py --sizes 20000
    DRG_SPARK_MASTER=local[2] python bench/bench_group.py --sizes 1000000 4000000 \\
        --definitions /tmp/chs11   # a pack made by `drg definitions import chs-1.1`
Writes bench/results/group.json and bench/results/group.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing it

from measure import cpu_seconds, peak_rss_mib, spark_bench  # bench/, the script's own folder

from jobs.group import group_cases
from jobs.synth import generate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "group"
REPEATS = 3  # timed runs of each, after one warm-up; the best of each is reported


def timed(df) -> tuple[float, float]:
    """Wall seconds and JVM CPU seconds of writing `df` to the noop sink."""
    pid = df.sparkSession._jvm.java.lang.ProcessHandle.current().pid()
    cpu, start = cpu_seconds(pid), time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start, cpu_seconds(pid) - cpu


def floor(cases, pack):
    if getattr(pack, "format", 1) == 2:  # a rule pack: the same codes table built from its rows
        rows = [(c, ("MCC" if "MCC" in pack.severity.get(c, {}) else "CC" if c in pack.severity else None))
                for c in pack.code_names]
        codes = cases.sparkSession.createDataFrame(rows, "code string, severity string")
    else:
        codes = pack.table("codes").select("code", "severity")
    items = F.concat(
        F.coalesce("secondary_dx", F.array()), F.array("principal_proc"), F.coalesce("other_procs", F.array())
    )
    return cases.select("case_id", F.explode(items).alias("code")).join(F.broadcast(codes), "code", "left")


def run_size(spark, pack, lookups, n: int, seed: int) -> dict:
    path = WORK / f"cases_{pack.name}-{pack.version}_{n}.parquet"  # cases are drawn from the pack's own codes
    cases, truth, _ = generate(spark, n, regions=4, hospitals=40, seed=seed, pack=pack.path)
    if not path.exists():
        cases.where(~F.col("malformed_row")).drop("malformed_row").write.mode("overwrite").parquet(str(path))
    data = spark.read.parquet(str(path))
    count = data.count()
    load_before = os.getloadavg()
    timed(floor(data, pack))  # warm-ups: JIT, code generation, broadcast of the lookup tables
    timed(group_cases(data, pack, lookups))
    floor_runs, group_runs = [], []
    for _ in range(REPEATS):  # alternating, so that a slow spell of the machine hits both alike
        floor_runs.append(timed(floor(data, pack)))
        group_runs.append(timed(group_cases(data, pack, lookups)))
    floor_s, group_s = min(w for w, _ in floor_runs), min(w for w, _ in group_runs)
    floor_cpu, group_cpu = min(c for _, c in floor_runs), min(c for _, c in group_runs)
    load_after = os.getloadavg()
    grouped = group_cases(data, pack, lookups).select("region_code", "hospital_id", "case_id", "drg")
    clean = truth.where(~F.col("has_error")).select("region_code", "hospital_id", "case_id", "true_drg")
    agree = (
        clean.join(grouped, ["region_code", "hospital_id", "case_id"])
        .agg(F.count("*").alias("n"), F.sum((F.col("drg") == F.col("true_drg")).cast("int")).alias("same"))
        .first()
    )
    return {
        "cases": count,
        "floor_s": round(floor_s, 2),
        "group_s": round(group_s, 2),
        "group_cases_per_s": round(count / group_s),
        "floor_cases_per_s": round(count / floor_s),
        "group_over_floor": round(group_s / floor_s, 2),
        "floor_runs_s": [round(w, 2) for w, _ in floor_runs],
        "group_runs_s": [round(w, 2) for w, _ in group_runs],
        "floor_cpu_s": round(floor_cpu, 2),
        "group_cpu_s": round(group_cpu, 2),
        "group_over_floor_cpu": round(group_cpu / floor_cpu, 2),
        "floor_runs_cpu_s": [round(c, 2) for _, c in floor_runs],
        "group_runs_cpu_s": [round(c, 2) for _, c in group_runs],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "jvm_peak_rss_mb": round(peak_rss_mib(spark._jvm.java.lang.ProcessHandle.current().pid())),
        "drg_agreement_clean_cases": round(agree["same"] / agree["n"], 5) if agree["n"] else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    ap.add_argument("--definitions", default="demo")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--results", default="group", help="results file name in bench/results (default group)")
    args = ap.parse_args()
    spark, pack, lookups, header = spark_bench("bench-group", args.definitions)
    results = {
        **header,
        "runs": [run_size(spark, pack, lookups, n, args.seed) for n in args.sizes],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.results}.json").write_text(json.dumps(results, indent=2))
    lines = [
        f"Grouping benchmark: {results['pack']}, {results['master']}, Spark {results['spark']}",
        "",
        "| cases | group s | cases/s | floor s | group/floor | group CPU s | floor CPU s | group/floor CPU "
        "| load avg (1 min) before / after | JVM peak RSS MB | DRG agreement (clean) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['cases']:,} | {r['group_s']} | {r['group_cases_per_s']:,} | {r['floor_s']} | "
            f"{r['group_over_floor']} | {r['group_cpu_s']} | {r['floor_cpu_s']} | {r['group_over_floor_cpu']} | "
            f"{r['load_average_before'][0]} / {r['load_average_after'][0]} | {r['jvm_peak_rss_mb']} | "
            f"{r['drg_agreement_clean_cases']} |"
            for r in results["runs"]
        ),
    ]
    (RESULTS / f"{args.results}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
