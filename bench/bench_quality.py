"""Recall and precision of the quality flags per injected error type, and the upcoding hospital check.

Runs the real path: synthetic batches (jobs.synth, with ground truth) -> CSV -> drg ingest -> drg
validate, then compares silver.case_quality with the generator's `_truth/errors` and
gold.hospital_quality with `_truth/hospitals`. Writes bench/results/quality.json and quality.md.

Definitions (per error type T and the rules mapped to it in RULES_FOR):
- recall    = cases injected with T that any mapped rule flags / cases injected with T
- precision = flagged cases injected with T / flagged cases that are clean or injected with T. A case
  injected with another error type is left out of the denominator: its one change can legitimately break
  a second rule (an obstetric code put on a 70-year-old man is both a sex and an age conflict).
- false_alarm_rate = clean cases (no injected error, not upcoded) with any flag / clean cases.
Timings are wall seconds on whatever machine runs this; do not compare runs from a busy machine.

Usage: python bench/bench_quality.py --cases 20000 [--hospitals 20] [--error-rate 0.05] [--definitions PACK]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from pyspark.sql import functions as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs import lake as lk  # noqa: E402
from jobs.ingest import ingest  # noqa: E402
from jobs.spark import get_spark  # noqa: E402
from jobs.synth import DEFAULT_PACK, generate  # noqa: E402
from jobs.synth.write import write_batches  # noqa: E402
from jobs.validate import validate  # noqa: E402

RULES_FOR = {
    "invalid_code": ["Q-CODE-DX", "Q-CODE-PX"],
    "wrong_code_version": ["Q-FMT-DX", "Q-FMT-PX"],
    "symptom_principal_dx": ["Q-PDX-SYM", "Q-PDX-EXT", "Q-PDX-AST"],
    "sex_conflict": ["Q-SEX-MALE", "Q-SEX-FEMALE"],
    "age_conflict": ["Q-AGE-NEWBORN", "Q-AGE-OBSTETRIC"],
    "discharge_before_admission": ["Q-DATE-ORDER"],
    "los_mismatch": ["Q-DATE-LOS"],
    "nonpositive_cost": ["Q-COST-POS"],
    "cost_category_mismatch": ["Q-COST-SUM"],
    "duplicate_case": ["Q-DUP"],
}
KEY = ["region_code", "hospital_id", "case_id"]
TARGET = 0.95


def measure(spark, case_quality, errors):
    """Per error type: tp, fn, fp_clean, recall, precision (definitions in the module docstring)."""
    injected = errors.where(F.col("error_type") != "upcoding").select(*KEY, "error_type")
    upcoded = errors.where(F.col("error_type") == "upcoding").select(*KEY).withColumn("upcoded", F.lit(True))
    joined = (
        case_quality.select(*KEY, "failed_rules")
        .join(injected, KEY, "left")
        .join(upcoded, KEY, "left")
    )
    aggs = [
        F.sum(F.when(F.col("error_type").isNull() & F.col("upcoded").isNull(), 1).otherwise(0)).alias("clean"),
        F.sum(F.when(F.col("error_type").isNull() & F.col("upcoded").isNull() & (F.size("failed_rules") > 0), 1)
              .otherwise(0)).alias("clean_flagged"),
    ]
    for etype, rules in RULES_FOR.items():
        hit = F.arrays_overlap("failed_rules", F.array(*map(F.lit, rules)))
        is_t = F.coalesce(F.col("error_type") == etype, F.lit(False))
        clean = F.col("error_type").isNull()
        aggs += [
            F.sum(F.when(is_t, 1).otherwise(0)).alias(f"{etype}__n"),
            F.sum(F.when(is_t & hit, 1).otherwise(0)).alias(f"{etype}__tp"),
            F.sum(F.when(clean & hit, 1).otherwise(0)).alias(f"{etype}__fp"),
            F.sum(F.when(~is_t & ~clean & hit, 1).otherwise(0)).alias(f"{etype}__other"),
        ]
    row = joined.agg(*aggs).first().asDict()
    per_type = {}
    for etype in RULES_FOR:
        n, tp, fp, other = (row[f"{etype}__{k}"] or 0 for k in ("n", "tp", "fp", "other"))
        per_type[etype] = {
            "injected": n, "flagged_true": tp, "flagged_clean": fp, "flagged_other_error": other,
            "recall": round(tp / n, 4) if n else None,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        }
    clean = row["clean"] or 0
    return per_type, {"clean_cases": clean, "clean_flagged": row["clean_flagged"] or 0,
                      "false_alarm_rate": round((row["clean_flagged"] or 0) / clean, 5) if clean else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--regions", type=int, default=1)
    ap.add_argument("--hospitals", type=int, default=20)
    ap.add_argument("--error-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--definitions", default=str(DEFAULT_PACK))
    ap.add_argument("--work", help="work folder (default: a temporary one, removed afterwards)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality"))
    args = ap.parse_args(argv)

    os.environ.setdefault("DRG_PSEUDONYM_KEY", "bench-quality")
    spark = get_spark("bench-quality")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-quality-"))
    src, lake = str(work / "src"), str(work / "lake")
    try:
        t0 = time.perf_counter()
        cases_df, truth_df, errors_df = generate(
            spark, args.cases, args.regions, args.hospitals, args.seed, args.definitions, args.error_rate
        )
        folders = write_batches(spark, cases_df, truth_df, errors_df, src)
        t_synth = time.perf_counter() - t0
        t0 = time.perf_counter()
        for folder in folders:
            region, batch = folder.split("/")[-2:]
            ingest(spark, lake, region, f"{src}/{region}/{batch}", batch_id=batch)
        t_ingest = time.perf_counter() - t0
        batches = sorted({f.split("/")[-1] for f in folders})
        t0 = time.perf_counter()
        results = [validate(spark, lake, args.definitions, b, as_of=date.today()) for b in batches]
        t_validate = time.perf_counter() - t0

        errors = spark.read.parquet(f"{src}/_truth/errors")
        per_type, clean = measure(spark, lk.read(spark, lake, "silver", "case_quality"), errors)
        truth_h = {(r.region_code, r.hospital_id) for r in spark.read.parquet(f"{src}/_truth/hospitals")
                   .where("upcoding").collect()}
        flagged_h = {(r.region_code, r.hospital_id) for r in lk.read(spark, lake, "gold", "hospital_quality")
                     .where("upcoding_flag").collect()}
        n_cases = sum(r.n_cases for r in results)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    report = {
        "cases_validated": n_cases, "hospitals_per_region": args.hospitals, "regions": args.regions,
        "error_rate": args.error_rate, "seed": args.seed, "definitions": args.definitions,
        "per_error_type": per_type, **clean,
        "upcoding": {"injected_hospitals": sorted("/".join(h) for h in truth_h),
                     "flagged_hospitals": sorted("/".join(h) for h in flagged_h),
                     "all_injected_flagged": truth_h <= flagged_h, "false_flags": len(flagged_h - truth_h)},
        "seconds": {"synth_write": round(t_synth, 1), "ingest": round(t_ingest, 1),
                    "validate_incl_gx": round(t_validate, 1)},
        "contract_met": all(o.success for r in results for o in r.outcomes),
        "spark_cores": spark.sparkContext.defaultParallelism,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    lines = [f"# Quality flags vs injected errors ({n_cases} cases, error rate {args.error_rate}, seed {args.seed})",
             "", "| error type | injected | recall | precision | flagged clean | flagged (other error) |",
             "|---|---|---|---|---|---|"]
    for etype, m in per_type.items():
        lines.append(f"| {etype} | {m['injected']} | {m['recall']} | {m['precision']} | {m['flagged_clean']} | "
                     f"{m['flagged_other_error']} |")
    lines += ["", f"False-alarm rate on clean cases: {clean['false_alarm_rate']} "
                  f"({clean['clean_flagged']} of {clean['clean_cases']}).",
              f"Upcoding hospitals injected {report['upcoding']['injected_hospitals']}, flagged "
              f"{report['upcoding']['flagged_hospitals']}.",
              f"Seconds: {report['seconds']} on {report['spark_cores']} cores."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    misses = [t for t, m in per_type.items()
              if m["injected"] and (m["recall"] < TARGET or (m["precision"] or 0) < TARGET)]
    if misses:
        print(f"below {TARGET}: {', '.join(misses)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
