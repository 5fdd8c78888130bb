"""End-to-end benchmark: generate N cases, run `nightly` on them, report cases/second per stage.

    python bench/bench_nightly.py --cases 1000000 4000000 [--out bench/results/nightly.json]

Each size runs in its own process (a fresh JVM, so peak memory is per size). Per-stage wall times come
from ops.runs, the same log operators read; peak memory is the high-water mark of resident memory
(VmHWM) of the Spark JVM and of the Python driver. Results are appended to a JSON file and rendered as
a Markdown table beside it for the README.

The reported night is the first nightly of a fresh JVM, which is what a scheduler's `spark-submit` gets
every night. `--nights K` runs K-1 more nights on the same landing data, each on a fresh lake, in the
same JVM, and reports them apart ("warm"): on 2 cores a fresh JVM spends tens of CPU-seconds compiling
Spark's and Delta's own code, and the warm nights show what that fixed cost is (it is what a long-lived
driver, such as an all-purpose cluster's, would not pay).
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


def one_size(cases: int, hospitals: int, seed: int, nights: int = 1) -> dict:
    """Runs in a child process: synth -> `nights` nightlies, each on a fresh lake; returns the measurements."""
    from pyspark.sql import functions as F

    from jobs import lake as lk
    from jobs.demo import write_config
    from jobs.nightly import NightlyResult, load_config, nightly
    from jobs.spark import get_spark
    from jobs.synth import DEFAULT_PACK, generate
    from jobs.synth.write import write_batches

    work = WORK / f"n{cases}"
    shutil.rmtree(work, ignore_errors=True)
    spark = get_spark("drg-bench")
    t0 = time.perf_counter()
    frames = generate(spark, cases, 1, hospitals, seed, str(DEFAULT_PACK))
    folders = write_batches(spark, *frames, str(work / "landing"))
    synth_s = time.perf_counter() - t0
    region = folders[0].split("/")[0]
    cfg = load_config(write_config(work, region, DEFAULT_PACK, methods=("drg",)))  # the DRG night, as before

    def night(run_id: str) -> tuple[dict, NightlyResult]:
        """One nightly on a fresh lake: (its figures, the nightly's result)."""
        shutil.rmtree(cfg.lake, ignore_errors=True)
        t0 = time.perf_counter()
        result = nightly(spark, cfg, run_id=run_id)
        total_s = time.perf_counter() - t0
        runs = (lk.read(spark, cfg.lake, "ops", "runs").where(F.col("run_id") == result.run_id)
                .select("step", "started_at", "ended_at", "rows_in").collect())
        stages = {r.step: {"seconds": round((r.ended_at - r.started_at).total_seconds(), 1), "rows_in": r.rows_in}
                  for r in runs}
        rows = sum(b.rows_read for b in result.ingested)
        for s in stages.values():
            s["cases_per_second"] = round(rows / s["seconds"]) if s["seconds"] else None
        # validate and group run side by side (jobs/nightly.py): what validation adds to the run is the
        # part of their joint span that grouping does not cover
        both = [r for r in runs if r.step in ("validate", "group")]
        span = (max(r.ended_at for r in both) - min(r.started_at for r in both)).total_seconds()
        figures = {
            "rows_ingested": rows, "nightly_seconds": round(total_s, 1),
            "nightly_cases_per_second": round(rows / total_s), "stages": stages,
            "validate_with_group": {"span_seconds": round(span, 1),
                                    "validation_beyond_group_seconds": round(span - stages["group"]["seconds"], 1)},
        }
        return figures, result

    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    first, result = night(f"bench-{cases}")
    peak = {"jvm": round(peak_rss_mib(jvm_pid)), "python": round(peak_rss_mib("self"))}  # before warm nights
    warm = [night(f"bench-{cases}-warm{i}")[0] for i in range(1, nights)]
    return {
        "cases": cases, "synth_seconds": round(synth_s, 1),
        "synth_cases_per_second": round(first["rows_ingested"] / synth_s), **first,
        "peak_rss_mib": peak, "release": (result.release or {}).get("release_id"),
        "warm_nights": warm,
    }


def stage_seconds(night: dict) -> str:
    """A night's stage seconds in STEPS order, for the tables."""
    return ", ".join(str(night["stages"].get(s, {}).get("seconds", "-")) for s in STEPS)


def markdown(entries: list[dict]) -> str:
    lines = ["| cases | synth c/s | " + " | ".join(f"{s} c/s" for s in STEPS) + " | "
             "nightly wall s | nightly c/s | peak JVM RSS MiB |", "|" + "---|" * (len(STEPS) + 5)]
    for e in entries:
        st = e["stages"]
        per = [str(st.get(s, {}).get("cases_per_second", "-")) for s in STEPS]
        lines.append(f"| {e['cases']:,} | {e['synth_cases_per_second']:,} | " + " | ".join(per)
                     + f" | {e['nightly_seconds']} | {e['nightly_cases_per_second']:,} | {e['peak_rss_mib']['jvm']} |")
    lines += ["", f"| cases | stage seconds ({', '.join(STEPS)}) | validate+group span s | "
              "validation beyond grouping s |", "|---|---|---|---|"]
    for e in entries:
        seconds = stage_seconds(e)
        both = e["validate_with_group"]
        lines.append(f"| {e['cases']:,} | {seconds} | {both['span_seconds']} | "
                     f"{both['validation_beyond_group_seconds']} |")
    warm = [e for e in entries if e.get("warm_nights")]
    if warm:
        lines += ["", "| cases | first night s (fresh JVM) | warm nights s (same JVM) | best warm c/s | "
                  "best warm night's stage seconds |", "|---|---|---|---|---|"]
        for e in warm:
            best = min(e["warm_nights"], key=lambda w: w["nightly_seconds"])
            seconds = stage_seconds(best)
            lines.append(f"| {e['cases']:,} | {e['nightly_seconds']} | "
                         f"{' / '.join(str(w['nightly_seconds']) for w in e['warm_nights'])} | "
                         f"{best['nightly_cases_per_second']:,} | {seconds} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--hospitals", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(RESULTS / "nightly.json"))
    parser.add_argument("--nights", type=int, default=1,
                        help="nightlies per size in one JVM, each on a fresh lake; the first is the one reported, "
                             "the others are reported apart as warm nights (default 1)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nights < 1:
        parser.error("--nights must be at least 1")
    if args.child:
        print(json.dumps(one_size(args.child, args.hospitals, args.seed, args.nights)))
        return
    entries = []
    for n in args.cases:
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--hospitals", str(args.hospitals),
                               "--seed", str(args.seed), "--nights", str(args.nights)],
                              capture_output=True, text=True, cwd=ROOT)
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
