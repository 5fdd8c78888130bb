"""End-to-end benchmark: generate N cases, run `nightly` on them, report cases/second per stage.

    python bench/bench_nightly.py --cases 1000000 4000000 [--out bench/results/nightly.json]

Each size runs in its own process (a fresh JVM, so peak memory is per size). Per-stage wall times come
from ops.runs, the same log operators read; peak memory is the high-water mark of resident memory
(VmHWM) of the Spark JVM and of the Python driver. Results are appended to a JSON file and rendered as
a Markdown table beside it for the README.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing it

from measure import machine, peak_rss_mib  # noqa: E402  (bench/, the script's own folder)

from jobs.nightly import STEPS  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "nightly"


def one_size(cases: int, hospitals: int, seed: int) -> dict:
    """Runs in a child process: synth -> nightly on a fresh lake; returns the measurements."""
    from pyspark.sql import functions as F

    from jobs import lake as lk
    from jobs.demo import write_config
    from jobs.nightly import load_config, nightly
    from jobs.spark import get_spark
    from jobs.synth import DEFAULT_PACK, generate
    from jobs.synth_write import write_batches

    work = WORK / f"n{cases}"
    shutil.rmtree(work, ignore_errors=True)
    spark = get_spark("drg-bench")
    t0 = time.perf_counter()
    frames = generate(spark, cases, 1, hospitals, seed, str(DEFAULT_PACK))
    folders = write_batches(spark, *frames, str(work / "landing"))
    synth_s = time.perf_counter() - t0
    region = folders[0].split("/")[0]
    cfg = load_config(write_config(work, region, DEFAULT_PACK))

    t0 = time.perf_counter()
    result = nightly(spark, cfg, run_id=f"bench-{cases}")
    total_s = time.perf_counter() - t0
    runs = (lk.read(spark, cfg.lake, "ops", "runs").where(F.col("run_id") == result.run_id)
            .select("step", "started_at", "ended_at", "rows_in").collect())
    stages = {r.step: {"seconds": round((r.ended_at - r.started_at).total_seconds(), 1), "rows_in": r.rows_in}
              for r in runs}
    rows = sum(b.rows_read for b in result.ingested)
    for s in stages.values():
        s["cases_per_second"] = round(rows / s["seconds"]) if s["seconds"] else None
    # validate and group run side by side (jobs/nightly.py): what validation adds to the run is the part
    # of their joint span that grouping does not cover
    both = [r for r in runs if r.step in ("validate", "group")]
    span = (max(r.ended_at for r in both) - min(r.started_at for r in both)).total_seconds()
    overlap = {"span_seconds": round(span, 1),
               "validation_beyond_group_seconds": round(span - stages["group"]["seconds"], 1)}
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    return {
        "cases": cases, "rows_ingested": rows, "synth_seconds": round(synth_s, 1),
        "synth_cases_per_second": round(rows / synth_s),
        "nightly_seconds": round(total_s, 1), "nightly_cases_per_second": round(rows / total_s),
        "stages": stages, "validate_with_group": overlap,
        "peak_rss_mib": {"jvm": round(peak_rss_mib(jvm_pid)), "python": round(peak_rss_mib("self"))},
        "release": (result.release or {}).get("release_id"),
    }


def markdown(entries: list[dict]) -> str:
    lines = ["| cases | synth c/s | ingest c/s | validate c/s | group c/s | price c/s | publish c/s | "
             "nightly wall s | nightly c/s | peak JVM RSS MiB |", "|" + "---|" * 10]
    for e in entries:
        st = e["stages"]
        per = [str(st.get(s, {}).get("cases_per_second", "-")) for s in STEPS]
        lines.append(f"| {e['cases']:,} | {e['synth_cases_per_second']:,} | " + " | ".join(per)
                     + f" | {e['nightly_seconds']} | {e['nightly_cases_per_second']:,} | {e['peak_rss_mib']['jvm']} |")
    lines += ["", "| cases | stage seconds (ingest, validate, group, price, publish) | validate+group span s | "
              "validation beyond grouping s |", "|---|---|---|---|"]
    for e in entries:
        seconds = ", ".join(str(e["stages"].get(s, {}).get("seconds", "-")) for s in STEPS)
        both = e["validate_with_group"]
        lines.append(f"| {e['cases']:,} | {seconds} | {both['span_seconds']} | "
                     f"{both['validation_beyond_group_seconds']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--hospitals", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(RESULTS / "nightly.json"))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_size(args.child, args.hospitals, args.seed)))
        return
    entries = []
    for n in args.cases:
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--hospitals", str(args.hospitals),
                               "--seed", str(args.seed)], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"bench at {n} cases failed:\n{proc.stderr[-3000:]}")
        entries.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(markdown(entries[-1:]))
    if len(entries) > 1:
        base, big = entries[0], entries[-1]
        scale = big["nightly_seconds"] / base["nightly_seconds"]
        print(f"{big['cases']:,} cases took {scale:.2f}x the time of {base['cases']:,}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "runs": entries}
    out.write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(entries) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
