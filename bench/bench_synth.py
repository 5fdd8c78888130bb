"""Benchmark `drg synth`: generate N cases and write them (CSV, canonical or GBK layout) with the truth.

Usage: python bench/bench_synth.py --cases 1000000 [--regions 10 --hospitals 50 --layout hlj_gbk]
Writes bench/results/synth_<N>.json with wall times per phase and throughput. Run big N on a quiet
machine; on a shared 2-core box use a small N (e.g. 20000) to check that the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing it

from jobs.spark import get_spark
from jobs.synth import DEFAULT_PACK, generate
from jobs.synth.write import write_batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--regions", type=int, default=10)
    parser.add_argument("--hospitals", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--definitions", default=str(DEFAULT_PACK))
    parser.add_argument("--layout", default="canonical")
    parser.add_argument("--format", default="csv", choices=("csv", "parquet"))
    parser.add_argument("--out", help="output folder (default: a temporary folder, removed afterwards)")
    args = parser.parse_args()

    spark = get_spark("bench-synth")
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-synth-"))
    started = time.perf_counter()
    cases, truth, errors = generate(spark, args.cases, args.regions, args.hospitals, args.seed,
                                    args.definitions, 0.02)
    planned = time.perf_counter()
    folders = write_batches(spark, cases, truth, errors, str(out), args.layout, args.format)
    written = time.perf_counter()
    rows = spark.read.parquet(str(out / "_truth" / "cases")).count()
    size = sum(f.stat().st_size for f in out.rglob("part-*") if "_truth" not in f.parts)
    result = {
        "cases": args.cases, "rows_written": rows, "regions": args.regions, "hospitals": args.hospitals,
        "layout": args.layout, "format": args.format, "definitions": args.definitions,
        "plan_seconds": round(planned - started, 2), "write_seconds": round(written - planned, 2),
        "cases_per_second": round(args.cases / (written - started)), "batch_folders": len(folders),
        "data_bytes": size, "cores": os.cpu_count(), "machine": platform.platform(),
        "spark_master": spark.sparkContext.master, "load_average": os.getloadavg()[0],
    }
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"synth_{args.cases}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
