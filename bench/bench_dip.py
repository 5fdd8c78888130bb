"""DIP catalogue + scoring against DRG grouping, on the same generated cases, in one run.

For each size N: generate N cases over three discharge years (jobs.synth, `discharge_years: 3`, codes of
the pack) and write them to Parquet with the generator's severity standing in for silver.case_quality's
(not timed). Then, on one Spark session, after one warm-up of each, `--repeats` (default 2) alternating
timed runs of each (best reported, all kept in the JSON; the machine may be shared):
- group: scan the Parquet, `group_cases` with the pack (default chs-2.0, the format-2 pack `drg demo` and
  users group with), write to the `noop` sink (as bench_group.py);
- group_<pack> for each `--compare` pack (e.g. `demo`, a format-1 pack: the format-1 grouper);
- dip: scan the same Parquet, `jobs.dip.stage.build` with the default policy (keys, the aggregating
  pass, catalogue, scores, point values, case scores, outliers, settlement, monitoring), and write all
  five tables to `noop`: everything `drg dip` does except reading silver and the Delta commits.
Each run's wall time and CPU time (Spark JVM + Python driver) are kept: the CPU ratio survives a shared
machine better than the wall-clock one. Also reported: packets (core / comprehensive), the share of cases
in core packets, the load average.

Usage:
    DRG_SPARK_MASTER=local[2] DRG_DRIVER_MEMORY=3g python bench/bench_dip.py --sizes 20000 --compare demo
Writes bench/results/dip.json and bench/results/dip.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing it

from measure import alternate, jvm_pid, load_grouper, peak_rss_mib, spark_bench  # bench/, the script's own folder

from jobs.dip import attributes as attr
from jobs.dip.policy import load_dip_policy
from jobs.dip.stage import build
from jobs.group import group_cases
from jobs.synth import generate
from jobs.synth.config import SynthConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "dip"
REPEATS = 2
KEY = ["region_code", "hospital_id", "case_id"]


def noop_group(data, pack, lookups) -> None:
    group_cases(data, pack, lookups).write.format("noop").mode("overwrite").save()


def dip_cases(data):
    """The generated cases in the shape jobs.dip.cases.priceable_cases returns."""
    return data.select(
        "region_code", "hospital_id", "case_id", "batch_id", F.lower(F.trim("payer")).alias("fund"),
        F.year("discharge_date").alias("year"), F.col("total_cost").alias("cost"),
        F.col("los_days").cast("double").alias("los"), "principal_dx", "principal_proc", "other_procs",
        "severity",
    ).where(F.col("discharge_date").isNotNull() & F.col("total_cost").isNotNull())


def noop_dip(data, table, policy):
    result = build(dip_cases(data), table, policy, "bench")
    for frame in result.frames.values():
        frame.write.format("noop").mode("overwrite").save()
    result.release()
    return result


def cases_path(spark, pack, n: int, seed: int) -> Path:
    """The generated cases for (pack, n) as Parquet, generated on first use (not timed)."""
    path = WORK / f"cases_{pack.name}-{pack.version}_{n}.parquet"
    if not path.exists():
        config = SynthConfig.model_validate({**load_config().model_dump(), "discharge_years": 3})
        cases, truth, _ = generate(spark, n, regions=1, hospitals=40, seed=seed, pack=pack.path, config=config)
        severity = truth.select(*KEY, F.col("true_severity").alias("severity")).dropDuplicates(KEY)
        (cases.where(~F.col("malformed_row")).drop("malformed_row").dropDuplicates(KEY).join(severity, KEY)
         .write.mode("overwrite").parquet(str(path)))
    return path


def run_size(spark, pack, lookups, compare: dict, n: int, seed: int, repeats: int = REPEATS) -> dict:
    data = spark.read.parquet(str(cases_path(spark, pack, n, seed)))
    count = data.count()
    table = attr.attribute_table(spark, attr.read_rows())
    policy = load_dip_policy()
    last = {}
    actions = {"group": lambda: noop_group(data, pack, lookups),
               **{f"group_{name}": (lambda p=p, lk=lk: noop_group(data, p, lk)) for name, (p, lk) in compare.items()},
               "dip": lambda: last.update(result=noop_dip(data, table, policy))}
    timing = alternate(actions, repeats, jvm_pid(spark))
    summary = last["result"].frames["dip_monitoring"].first()
    dip = timing["dip"]
    return {
        "cases": count,
        **{f"{name}_s": t["s"] for name, t in timing.items()},
        **{f"{name}_cpu_s": t["cpu_s"] for name, t in timing.items()},
        "dip_over_group": round(dip["s"] / timing["group"]["s"], 2),
        "dip_over_group_cpu": round(dip["cpu_s"] / timing["group"]["cpu_s"], 2),
        **{f"dip_over_group_{name}": round(dip["s"] / timing[f"group_{name}"]["s"], 2) for name in compare},
        "dip_cases_per_s": round(count / dip["s"]),
        "runs": timing,
        "core_packets": summary["n_core_packets"],
        "comprehensive_packets": summary["n_comprehensive_packets"],
        "core_share": round(summary["core_share"], 4),
        "base_years": last["result"].base_years,
        "load_average": os.getloadavg(),
        "jvm_peak_rss_mb": round(peak_rss_mib(jvm_pid(spark))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    ap.add_argument("--definitions", default="chs-2.0", help="pack the cases are drawn for and grouped with")
    ap.add_argument("--compare", nargs="*", default=[], help="more packs to time the grouper with (e.g. demo)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=REPEATS, help="timed runs of each after the warm-up")
    ap.add_argument("--note", default="", help="written into the results (e.g. 'machine shared')")
    args = ap.parse_args()
    spark, pack, lookups, header = spark_bench("bench-dip", args.definitions)
    compare = {name: load_grouper(spark, name) for name in args.compare}
    compared = {name: f"{p.name} {p.version} (format {getattr(p, 'format', 1)})" for name, (p, _) in compare.items()}
    results = {**header, "compare": compared, "note": args.note,
               "repeats": args.repeats,
               "runs": [run_size(spark, pack, lookups, compare, n, args.seed, args.repeats) for n in args.sizes]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dip.json").write_text(json.dumps(results, indent=2))
    extra = list(compare)
    lines = [
        f"DIP benchmark: cases drawn for and grouped with {results['pack']}, {results['master']}, "
        f"Spark {results['spark']}" + (f" ({args.note})" if args.note else ""),
        *(f"group_{name}: the grouper with {label}" for name, label in compared.items()),
        "",
        "| cases | group s | " + "".join(f"group_{n} s | " for n in extra) + "dip s | dip/group | "
        + "".join(f"dip/group_{n} | " for n in extra) + "dip/group CPU | dip cases/s | core packets | "
        "comprehensive | core share | load avg (1, 5, 15 min) | JVM peak RSS MB |",
        "|---|---|" + "---|" * (2 * len(extra)) + "---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['cases']:,} | {r['group_s']} | " + "".join(f"{r[f'group_{n}_s']} | " for n in extra)
            + f"{r['dip_s']} | {r['dip_over_group']} | " + "".join(f"{r[f'dip_over_group_{n}']} | " for n in extra)
            + f"{r['dip_over_group_cpu']} | {r['dip_cases_per_s']:,} | {r['core_packets']:,} | "
            f"{r['comprehensive_packets']:,} | {r['core_share']} | "
            f"{', '.join(f'{x:.1f}' for x in r['load_average'])} | {r['jvm_peak_rss_mb']} |"
            for r in results["runs"]
        ),
    ]
    (RESULTS / "dip.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
