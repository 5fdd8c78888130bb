"""Incremental nights: a full night over N cases, then a night adding 1% new cases, against a full recompute.

    python bench/bench_incremental.py --cases 300000 1000000 [--out bench/results/incremental.json]

Per size, in its own process (a fresh JVM, so the peak memory is per size):
1. generate N + 1% cases once; the 1% (every case whose number ends in 99 of 100, so every hospital
   and DRG is represented) becomes a later batch folder, held back from the landing zone;
2. night 1 ("full"): a fresh lake, the N cases: the cold full night a first deployment runs;
3. the lake is copied; the 1% batch arrives in both;
4. night 2 ("incremental") on the lake: validation and grouping read only the new batch, pricing and
   publishing their window;
5. night 2 again with `full=True` on the copy ("recompute"): the same batches, the same previous
   release, everything recomputed, warm (same JVM): the fair denominator and the reference answer;
6. the two night-2 results are compared table by table (jobs/lake_diff.py: silver, gold, published,
   row for row, doubles within 1e-12).
Steps 3, 5 and 6 run up to `--recompute-max` cases (default 1M): above it, the copy and the second full
night of a 4M or 10M lake cost more machine time than they prove beyond the smaller sizes.

Wall times come from the nightly call and per step from ops.runs; peak memory is VmHWM of the JVM and
the Python driver; lake size is the bytes under the lake folder after night 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing it

from measure import machine, peak_rss_mib  # noqa: E402  (bench/, the script's own folder)

from jobs.nightly import STEPS  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "incremental"
NEW_SHARE = 100  # one case in NEW_SHARE arrives in the incremental night


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def generate_split(spark, out: Path, cases: int, hospitals: int, seed: int) -> tuple[str, str]:
    """N + 1% generated cases under `out`: the N in the batch DEFAULT_BATCH_DATE, the 1% (every case whose
    number ends in 99 of 100, so every hospital, DRG and discharge year gets new cases) in the batch of the
    day after. Returns (region, the later batch's id)."""
    from pyspark.sql import functions as F

    from jobs.synth import DEFAULT_BATCH_DATE, DEFAULT_PACK, generate
    from jobs.synth.write import write_batches

    shutil.rmtree(out, ignore_errors=True)
    frames = generate(spark, cases + cases // NEW_SHARE, 1, hospitals, seed, str(DEFAULT_PACK))
    later = (date.fromisoformat(DEFAULT_BATCH_DATE) + timedelta(days=1)).isoformat()
    number = F.substring("case_id", 3, 12).try_cast("long")
    new = F.coalesce(number % NEW_SHARE == NEW_SHARE - 1, F.lit(False))
    frames = [f.withColumn("batch_id", F.when(new, F.lit(later)).otherwise(F.col("batch_id"))) for f in frames]
    folders = write_batches(spark, *frames, str(out))
    return folders[0].split("/")[0], later


def one_size(cases: int, hospitals: int, seed: int, methods: list[str], recompute: bool = True,
             recalibration: str | None = None) -> dict:
    """Runs in a child process: synth -> full night -> +1% night -> full recompute; the measurements."""
    from pyspark.sql import functions as F

    from jobs import lake as lk
    from jobs.demo import write_config
    from jobs.lake_diff import differences
    from jobs.nightly import load_config, nightly
    from jobs.pricing.policy import load_policy, with_schedule
    from jobs.spark import get_spark
    from jobs.synth import DEFAULT_BATCH_DATE, DEFAULT_PACK

    work = WORK / f"n{cases}"
    shutil.rmtree(work, ignore_errors=True)
    spark = get_spark("drg-bench-incremental")
    total = cases + cases // NEW_SHARE
    t0 = time.perf_counter()
    region, later = generate_split(spark, work / "generated", cases, hospitals, seed)
    synth_s = time.perf_counter() - t0
    landing = work / "landing" / region
    landing.mkdir(parents=True)
    shutil.move(str(work / "generated" / region / DEFAULT_BATCH_DATE), str(landing / DEFAULT_BATCH_DATE))
    cfg = load_config(write_config(work, region, DEFAULT_PACK)).model_copy(
        update={"methods": methods, "policy": with_schedule(work, recalibration) if recalibration else None})
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()

    def night(lake_cfg, full: bool = False) -> dict:
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        result = nightly(spark, lake_cfg, full=full)  # a minted run id, as `drg nightly` has
        seconds = time.perf_counter() - t0
        runs = (lk.read(spark, lake_cfg.lake, "ops", "runs").where(F.col("run_id") == result.run_id)
                .select("step", "started_at", "ended_at", "rows_in", "note").collect())
        stages = {r.step: {"seconds": round((r.ended_at - r.started_at).total_seconds(), 1),
                           "rows_in": r.rows_in, "note": r.note} for r in runs}
        return {"run_id": result.run_id, "seconds": round(seconds, 1), "stages": stages,
                "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                "rows_ingested": sum(b.rows_read for b in result.ingested),
                "release": (result.release or {}).get("release_id")}

    first = night(cfg)
    copy = cfg.model_copy(update={"lake": str(work / "lake-recompute")})
    if recompute:
        shutil.copytree(cfg.lake, copy.lake)
    shutil.move(str(work / "generated" / region / later), str(landing / later))
    incremental = night(cfg)
    recomputed = night(copy, full=True) if recompute else None
    peak = {"jvm": round(peak_rss_mib(jvm_pid)), "python": round(peak_rss_mib("self"))}
    diffs = differences(spark, cfg.lake, incremental["run_id"], copy.lake, recomputed["run_id"]) if recompute else None
    return {
        "cases": cases, "new_cases": total - cases, "methods": methods,
        "recalibration": recalibration or load_policy().recalibration.every,
        "synth_seconds": round(synth_s, 1),
        "full": first, "incremental": incremental, "recompute": recomputed,
        "ratio_to_cold_full": round(incremental["seconds"] / first["seconds"], 3),
        "ratio_to_warm_recompute": round(incremental["seconds"] / recomputed["seconds"], 3) if recompute else None,
        "full_cases_per_second": round(cases / first["seconds"]),
        "published_equal": None if diffs is None else not diffs, "differences": (diffs or [])[:10],
        "peak_rss_mib": peak, "lake_bytes": folder_bytes(Path(cfg.lake)),
    }


def markdown(entries: list[dict]) -> str:
    lines = ["| history cases | methods | full night s (cold) | c/s | +1% night s | ratio to full | "
             "--full recompute s (warm) | ratio to recompute | equal to recompute | load avg (full / +1% / recompute) "
             "| peak JVM / driver MiB | lake MiB |", "|" + "---|" * 12]
    for e in entries:
        loads = " / ".join(str(e[n]["load_average"][0]) if e[n] else "-" for n in ("full", "incremental", "recompute"))
        equal = {True: "yes", False: "NO", None: "not run"}[e["published_equal"]]
        recompute = e["recompute"]["seconds"] if e["recompute"] else "-"
        lines.append(
            f"| {e['cases']:,} | {'+'.join(e.get('methods', ['drg']))} ({e.get('recalibration', 'night')}) | "
            f"{e['full']['seconds']} | "
            f"{e['full_cases_per_second']:,} | {e['incremental']['seconds']} | {e['ratio_to_cold_full']} | "
            f"{recompute} | {e['ratio_to_warm_recompute'] or '-'} | "
            f"{equal} | {loads} | {e['peak_rss_mib']['jvm']} / "
            f"{e['peak_rss_mib']['python']} | {e['lake_bytes'] / 2**20:,.0f} |")
    steps = [s for s in (*STEPS[:-2], "dip", *STEPS[-2:]) if any(s in e["full"]["stages"] for e in entries)]
    lines += ["", "| history cases | night | " + " | ".join(f"{s} s" for s in steps) + " |",
              "|---|---|" + "---|" * len(steps)]
    for e in entries:
        for name in ("full", "incremental", "recompute"):
            if not e[name]:
                continue
            st = e[name]["stages"]
            lines.append(f"| {e['cases']:,} | {name} | "
                         + " | ".join(str(st.get(s, {}).get("seconds", "-")) for s in steps) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[1_000_000, 4_000_000, 10_000_000])
    parser.add_argument("--hospitals", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(RESULTS / "incremental.json"))
    parser.add_argument("--methods", default="drg", help="payment methods of the nightly config: drg or drg,dip")
    parser.add_argument("--recalibration", choices=("night", "month", "quarter", "year"),
                        help="the shipped policy with this schedule (default: as shipped, year): night re-estimates "
                             "every night; month/quarter/year settle the +1%% night at the first night's weights "
                             "(the batches are a day apart)")
    parser.add_argument("--recompute-max", type=int, default=1_000_000,
                        help="largest history that also gets the --full recompute and the comparison")
    parser.add_argument("--note", default="", help="what else ran on the machine while measuring")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_size(args.child, args.hospitals, args.seed, args.methods.split(","),
                                  args.child <= args.recompute_max, args.recalibration), default=str))
        return
    entries = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in args.cases:
        proc = subprocess.run([sys.executable, __file__, "--child", str(n), "--hospitals", str(args.hospitals),
                               "--seed", str(args.seed), "--methods", args.methods,
                               *(["--recalibration", args.recalibration] if args.recalibration else []),
                               "--recompute-max", str(args.recompute_max)],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"bench at {n} cases failed:\n{proc.stderr[-3000:]}")
        entries.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(markdown(entries[-1:]), flush=True)
        report = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                  "note": args.note, "runs": entries}
        out.write_text(json.dumps(report, indent=2, default=str))  # after each size: a long run keeps its sizes
        out.with_suffix(".md").write_text(markdown(entries) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
