"""Two routes to one scheme: the CHS-DRG 1.1 pack built from the NHSA rule text (`drg definitions import
opendrg-rules --from ../shared/reference/opendrg-rules/CHS_DRG_11`) and the one built from OpenDRG's
Python source (`drg definitions import opendrg`, shipped as jobs/packs/chs-1.1) group the same realistic
cases; every disagreement is counted by class (ADRG pair) with one example case.

Cases: half drawn rule by rule from each pack (jobs.synth.scheme.SchemeSampler), so that each route's
own rule forms are exercised. Both packs are grouped by the same Spark grouper (jobs.group.group_cases).

Usage:  DRG_DRIVER_MEMORY=3g python bench/bench_routes.py --cases 100000
Writes bench/results/routes_chs11.json and bench/results/routes_chs11.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing it

from pyspark.sql import types as T

from jobs.definitions import load_pack
from jobs.group import group_cases
from jobs.schemes.pack import parse_rule_pack
from jobs.schemes.rules_pack import import_rules
from jobs.spark import get_spark
from jobs.synth.scheme import SchemeSampler
from schemas.discharge import canonical_schema

ROOT = Path(__file__).resolve().parents[1]
RULES_11 = ROOT.parent / "shared" / "reference" / "opendrg-rules" / "CHS_DRG_11"
RESULTS = ROOT / "bench" / "results"
DROP = ("source_file", "source_row", "ingested_at")


def frame(spark, rows: list[dict]):
    fields = [f for f in canonical_schema().fields if f.name not in DROP]
    base = {"hospital_id": "H1", "region_code": "000000", "payer": "employee", "total_cost": 1.0, "batch_id": "b"}
    data = [tuple({**base, **r}.get(f.name) for f in fields) for r in rows]
    return spark.createDataFrame(data, T.StructType(fields))


def cause(r: dict, x, y, text_pack, code_pack) -> str:
    """Why the routes disagree on case `r` (x: text route's result, y: OpenDRG route's), by the known
    differences of the two packs (README, "Two routes to CHS-DRG 1.1")."""
    procs = [p for p in [r.get("principal_proc"), *(r.get("other_procs") or [])] if p]
    or_text = text_pack.lists["OR_PROCS"]
    or_code = code_pack.lists[next(n for n in code_pack.lists if "SS_VALID" in n)]
    any_surgery = {"SB1", "TB1", "XJ1", "YC1", "WJ1", "ZZ1"}
    pair = {x.adrg, y.adrg}
    if any((p in or_text) != (p in or_code) for p in procs) and (
        any(a and a.endswith("QY") for a in pair) or pair & any_surgery
    ):
        return "operating-room procedure list (QY test, any-surgery ADRGs)"
    if pair & {"FM1", "FM3", "LL1"}:
        return "codes only OpenDRG lists (FM1 36.0700, FM3 88.5500/88.5600, LL1 39.9500)"
    if r.get("age_days") is not None or pair & {"PV1"}:
        return "newborn/infant age conditions"
    if pair == {"FF1", "FF2"}:
        return "FF1/FF2 order"
    return "unexplained"


def compare(spark, text_pack, code_pack, rows: list[dict]) -> dict:
    df = frame(spark, rows).cache()
    a = {r.case_id: r for r in group_cases(df, text_pack).select("case_id", "adrg", "drg").collect()}
    b = {r.case_id: r for r in group_cases(df, code_pack).select("case_id", "adrg", "drg").collect()}
    by_id = {r["case_id"]: r for r in rows}
    classes: Counter = Counter()
    pairs: Counter = Counter()
    examples: dict = {}
    fields = ("principal_dx", "secondary_dx", "principal_proc", "other_procs", "sex", "age_years", "age_days")
    for cid, x in a.items():
        y = b[cid]
        if x.drg != y.drg:
            r = by_id[cid]
            key = cause(r, x, y, text_pack, code_pack)
            classes[key] += 1
            pairs[f"{key}: {x.adrg} / {y.adrg}"] += 1
            examples.setdefault(key, {k: r.get(k) for k in fields} | {"text": x.drg, "opendrg": y.drg})
    same = len(a) - sum(classes.values())
    return {
        "cases": len(a),
        "same_drg": same,
        "agreement": same / len(a),
        "classes": classes.most_common(),
        "adrg_pairs": pairs.most_common(),
        "examples": examples,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default=str(RESULTS / "routes_chs11"))
    args = ap.parse_args()
    if not RULES_11.is_dir():
        print(f"needs {RULES_11}", file=sys.stderr)
        return 2
    spark = get_spark("bench-routes")
    with tempfile.TemporaryDirectory() as tmp:
        import_rules(RULES_11, Path(tmp) / "text", log=lambda _: None)
        text_pack, code_pack = load_pack(spark, Path(tmp) / "text"), load_pack(spark, "chs-1.1")
        t0 = time.perf_counter()
        half = args.cases // 2
        rows = SchemeSampler(parse_rule_pack(Path(tmp) / "text")).draw(half, args.seed)
        rows += [
            {**r, "case_id": f"o{r['case_id']}"}
            for r in SchemeSampler(parse_rule_pack(code_pack.path)).draw(args.cases - half, args.seed + 1)
        ]
        drawn = time.perf_counter() - t0
        result = compare(spark, text_pack, code_pack, rows)
    result.update(
        seed=args.seed,
        draw_seconds=round(drawn, 1),
        text_pack="opendrg-rules/CHS_DRG_11",
        code_pack="jobs/packs/chs-1.1",
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = [
        f"# CHS-DRG 1.1: rule text vs OpenDRG source, {result['cases']:,} cases (seed {args.seed})",
        "",
        f"Same DRG: {result['same_drg']:,} ({result['agreement']:.3%}).",
        "",
        "| cases | class | example |",
        "|---|---|---|",
        *(f"| {n} | {k} | `{json.dumps(result['examples'][k], ensure_ascii=False)}` |" for k, n in result["classes"]),
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
