"""Speed of pseudonymisation at 1M+ ids: the old plan-literal HMAC against the executor-side key (#35).

Variants, each hashing N distinct 18-digit ID-card-like strings and writing the result to Spark's
`noop` sink (every row hashed, nothing stored):
- `literal_padded_key`: the previous jobs/pseudonym.py, sha2/concat with `key ^ ipad` and `key ^ opad`
  as binary literals in the plan (the leak of issue #35), rebuilt here only to be measured;
- `reflect_executor_key`: today's jobs.pseudonym.hmac_sha256, `reflect` of commons-codec's
  HmacUtils.hmacSha256Hex with the key read on the executor (JVM property, else environment);
- `arrow_python_udf`: Python's hmac in an Arrow-batched pandas UDF, the design the rules exclude
  unless its cost is small, for scale.
Each variant is warmed up on 1% of the rows, then the variants run in turn, `--repeat` rounds, so a
change in the load of a shared machine hits them alike; each one's best wall time and least JVM CPU
seconds over the rounds are reported (the UDF's Python workers are other processes, not counted).

Usage: DRG_DRIVER_MEMORY=3g python bench/bench_pseudonym.py --n 1000000 --repeat 3
Writes bench/results/pseudonym.json and .md (and prints them).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing it

from measure import machine, peak_rss_mib  # bench/, the script's own folder

from jobs.pseudonym import hmac_sha256, publish_key
from jobs.spark import get_spark

OUT = Path(__file__).resolve().parent / "results" / "pseudonym"
KEY = b"bench-key-0123456789abcdef"


def literal_padded_key(col, key: bytes = KEY):
    """The pre-#35 expression (key material in the plan); kept here for the comparison only."""
    block = key.ljust(64, b"\0")
    ipad, opad = bytearray(b ^ 0x36 for b in block), bytearray(b ^ 0x5C for b in block)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(col, "UTF-8")), 256))
    return F.when(col.isNotNull(), F.sha2(F.concat(F.lit(opad), inner), 256))


def arrow_python_udf(col):
    @F.pandas_udf("string")
    def h(ids: pd.Series) -> pd.Series:
        return ids.map(lambda v: None if v is None else hmac.new(KEY, v.encode(), hashlib.sha256).hexdigest())

    return h(col)


VARIANTS = {"literal_padded_key": literal_padded_key, "reflect_executor_key": hmac_sha256,
            "arrow_python_udf": arrow_python_udf}


def ids(spark, n: int):
    """N distinct ID-card-like strings, materialised once so every variant hashes the same input."""
    text = F.format_string("2301%014d", (F.col("id") * 7919) % 100000000000000)
    return spark.range(n).select(text.alias("patient_id")).localCheckpoint()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run_once(df, fn, pid: int) -> tuple[float, float]:
    cpu, start = cpu_seconds(pid), time.perf_counter()
    df.select(fn(F.col("patient_id")).alias("h")).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start, cpu_seconds(pid) - cpu


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    spark = get_spark("bench-pseudonym")
    publish_key(spark, KEY)
    data = ids(spark, args.n)
    sample = data.limit(args.n // 100).localCheckpoint()
    check = data.limit(1000).select("patient_id", *[fn(F.col("patient_id")).alias(name)
                                                   for name, fn in VARIANTS.items()]).collect()
    for row in check:  # all variants agree with Python's hmac
        expected = hmac.new(KEY, row.patient_id.encode(), hashlib.sha256).hexdigest()
        assert all(row[name] == expected for name in VARIANTS), row
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    for fn in VARIANTS.values():
        run_once(sample, fn, pid)
    rounds = {name: [] for name in VARIANTS}
    for _ in range(args.repeat):
        for name, fn in VARIANTS.items():
            rounds[name].append(run_once(data, fn, pid))
            print(name, rounds[name][-1], flush=True)
    results = {}
    for name, runs in rounds.items():
        seconds = min(r[0] for r in runs)
        results[name] = {"seconds": round(seconds, 2), "ids_per_second": round(args.n / seconds),
                         "jvm_cpu_seconds": round(min(r[1] for r in runs), 1),
                         "all_rounds_seconds": [round(r[0], 2) for r in runs]}
    base = results["literal_padded_key"]["seconds"]
    for r in results.values():
        r["vs_literal"] = round(r["seconds"] / base, 2)
    report = {"n": args.n, "repeat": args.repeat, "results": results,
              "peak_rss_mib": {"jvm": round(peak_rss_mib(pid)), "python": round(peak_rss_mib("self"))},
              "machine": machine(),
              "note": "2-core machine shared with other sessions' Spark jobs while measured"}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Pseudonymisation, {args.n:,} ids (best of {args.repeat}, noop sink)", "",
             "| variant | best s | ids/s | x literal | JVM CPU s | all rounds s |", "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {k} | {v['seconds']} | {v['ids_per_second']:,} | {v['vs_literal']} | {v['jvm_cpu_seconds']} | "
              f"{', '.join(map(str, v['all_rounds_seconds']))} |" for k, v in results.items()]
    lines += ["", f"Machine: {report['machine']}; {report['note']}.", ""]
    OUT.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
