"""Differential benchmark: the project's grouper against OpenDRG's own grouper, per scheme.

For each OpenDRG scheme package under ../shared/reference/opendrg/drg_group: import it with
`drg definitions import opendrg` (as the source has it), draw N realistic cases rule by rule from the
pack (jobs.synth.scheme), group them with OpenDRG's GroupProxy in-process (typed fields) and with
`group_cases` in Spark, and count exact MDC / ADRG / DRG agreement. Also the shipped national pack
(jobs/packs/chs-1.1, QY tests active) against OpenDRG chs_drg_11.

Disagreements are classified; a class is excluded from the agreement figure only with its written
reason (README, "Grouping fidelity"):
- `oracle_error`: OpenDRG raises on the case (hefei_2023's IB1_2 calls IB1X without importing it);
- `qy_switched_off`: the pack gives `<letter>QY` where OpenDRG's QY test is `if False and ...`.

Usage: DRG_DRIVER_MEMORY=3g python bench/bench_agreement.py [--cases 20000] [--schemes chs_drg_11 ...]
Writes bench/results/agreement.json and bench/results/agreement.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

from pyspark.sql import functions as F
from pyspark.sql import types as T

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing it

from jobs.definitions import load_pack
from jobs.group import group_cases
from jobs.schemes.evaluate import compile_pack
from jobs.schemes.opendrg import import_opendrg
from jobs.schemes.oracle import OpenDrg
from jobs.spark import get_spark
from jobs.synth import generate
from jobs.synth.scheme import SchemeSampler
from schemas.discharge import canonical_schema

ROOT = Path(__file__).resolve().parents[1]
OPENDRG = ROOT.parent / "shared" / "reference" / "opendrg"
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "agreement"
SCHEMES = ["chs_drg_11", "chs_drg_10", "haerbin_2022", "beijing_2022", "hefei_2023", "qingdao_2023"]
CANON = [f for f in canonical_schema().fields if f.name not in ("source_file", "source_row", "ingested_at")]


def frame(spark, cases):
    rows = []
    for c in cases:
        r = dict.fromkeys(f.name for f in CANON)
        r.update({k: v for k, v in c.items() if k in r})
        r.update(hospital_id="H1", region_code="000000", batch_id="b", payer="employee", total_cost=1.0)
        rows.append(tuple(r[f.name] for f in CANON))
    return spark.createDataFrame(rows, T.StructType(CANON), verifySchema=False)


def generated(spark, pack_path, n: int, seed: int) -> list[dict]:
    """Clean cases from the Spark generator (jobs.synth) for the pack, as the sampler's dicts."""
    cases, truth, _ = generate(spark, n, 1, 10, seed, str(pack_path), error_rate=0.0)
    fields = ("case_id", "principal_dx", "secondary_dx", "principal_proc", "other_procs", "sex", "age_years",
              "age_days", "birth_weight_g", "los_days", "discharge_disposition", "vent_hours")
    rows = cases.join(truth.select("case_id", F.col("true_drg").alias("intended_drg")), "case_id")
    return [r.asDict() for r in rows.select(*fields, "intended_drg").orderBy("case_id").collect()]


def compare(spark, label: str, pack_path, scheme: str, n: int, seed: int, use_generator: bool = False) -> dict:
    pack = load_pack(spark, pack_path)
    cases = generated(spark, pack_path, n, seed) if use_generator else SchemeSampler(pack).draw(n, seed)
    n = len(cases)
    oracle = OpenDrg(OPENDRG, scheme)
    t = time.perf_counter()
    theirs = {c["case_id"]: oracle.group(c) for c in cases}
    oracle_s = time.perf_counter() - t
    compiled = compile_pack(pack)
    t = time.perf_counter()
    ours = {r.case_id: (r.mdc, r.adrg, r.drg) for r in group_cases(frame(spark, cases), pack, compiled).collect()}
    ours_s = time.perf_counter() - t
    classes, examples = Counter(), {}
    for k, (_tm, ta, td) in theirs.items():
        om, oa, od = ours[k]
        if od == td:
            continue
        if td.startswith("ERROR"):
            cls = "oracle_error"
        elif od.endswith("QY") and not td.endswith("QY"):
            cls = "qy_switched_off"
        else:
            cls = f"other {oa}->{od} vs {ta}->{td}"
        classes[cls] += 1
        examples.setdefault(cls, {"case": next(c for c in cases if c["case_id"] == k), "ours": od, "opendrg": td})
    excluded = classes["oracle_error"] + classes["qy_switched_off"]
    same = lambda i: sum(ours[k][i] == theirs[k][i] for k in theirs)  # noqa: E731
    compared = n - excluded
    drg_same = same(2)
    return {
        "label": label,
        "scheme": scheme,
        "cases": n,
        "exact_drg_all": round(100 * drg_same / n, 2),
        "exact_adrg_all": round(100 * same(1) / n, 2),
        "exact_mdc_all": round(100 * same(0) / n, 2),
        "excluded": dict((k, v) for k, v in classes.items() if k in ("oracle_error", "qy_switched_off")),
        "exact_drg_after_exclusions": round(100 * drg_same / compared, 3) if compared else None,
        "other_disagreements": {k: v for k, v in classes.items() if k.startswith("other")},
        "examples": {k: v for k, v in examples.items()},
        "opendrg_cases_per_s": round(n / oracle_s),
        "spark_group_s": round(ours_s, 1),
        "distinct_drgs_drawn": len({c["intended_drg"] for c in cases}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--schemes", nargs="*", default=SCHEMES)
    ap.add_argument("--generator", action="store_true",
                    help="cases from the Spark generator (drg synth) instead of the rule-by-rule sampler; "
                         "results in agreement-generator.{json,md}")
    args = ap.parse_args()
    stem = "agreement-generator" if args.generator else "agreement"
    if not OPENDRG.is_dir():
        print(f"OpenDRG not found at {OPENDRG}: nothing to compare")
        return 1
    spark = get_spark("bench-agreement", {})
    results = []
    for scheme in args.schemes:
        out = WORK / scheme
        import_opendrg(OPENDRG / "drg_group" / scheme, out)
        results.append(compare(spark, f"{scheme} (imported as the source is)", out, scheme, args.cases, args.seed,
                               args.generator))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "examples"}, ensure_ascii=False), flush=True)
    if "chs_drg_11" in args.schemes:
        results.append(compare(spark, "chs-1.1 shipped pack (QY active)", "chs-1.1", "chs_drg_11", args.cases,
                               args.seed, args.generator))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "examples"}, ensure_ascii=False), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{platform.machine()} {platform.system()}, 2 cores shared with other jobs", "seed": args.seed,
            "cases_from": "jobs.synth generator" if args.generator else "jobs.synth.scheme sampler"}
    (RESULTS / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "results": results}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    lines = [
        "| pack | cases | exact DRG | ADRG | MDC | excluded (class: n) | exact DRG after exclusions "
        "| other disagreements |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        excl = ", ".join(f"{k}: {v}" for k, v in r["excluded"].items()) or "-"
        other = sum(r["other_disagreements"].values())
        lines.append(
            f"| {r['label']} | {r['cases']:,} | {r['exact_drg_all']}% | {r['exact_adrg_all']}% | {r['exact_mdc_all']}% "
            f"| {excl} | {r['exact_drg_after_exclusions']}% | {other} |"
        )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
