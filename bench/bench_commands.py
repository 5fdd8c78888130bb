"""A full night and a +1% night as two `drg nightly` commands: each in its own JVM, and through one `drg serve`.

    python bench/bench_commands.py --cases 300000 [--methods drg,dip] [--out bench/results/commands-300k.json]

A scheduler runs a night as a command. In its own process the command pays for a new JVM, and on a lake of a
few hundred thousand cases that is most of a small night; through a warm driver (`drg serve`, jobs/server.py)
it is not. The same generated batches as bench_incremental.py (N cases, then 1% more in a later batch) are
run twice on fresh lakes:
1. "commands": `drg nightly` twice, each a fresh interpreter and JVM;
2. "server": `drg serve` started (its start timed apart), then the same two commands with DRG_SERVER set.
Wall times are the commands' own, as a scheduler sees them; the steps' seconds are parsed from their output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing it

from bench_incremental import generate_split  # noqa: E402  (bench/, the script's own folder)
from measure import machine  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "commands"
STEP = re.compile(r"\] (\w+) ok in ([\d.]+) s")


def drg(args: list[str], env: dict) -> tuple[float, dict]:
    """Run `drg args`; its wall seconds and the seconds of each step it printed."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"drg {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return round(seconds, 1), {m[1]: float(m[2]) for m in STEP.finditer(proc.stdout + proc.stderr)}


def two_nights(mode: str, generated: Path, region: str, later: str, methods: list[str], env: dict) -> dict:
    from jobs.demo import write_config
    from jobs.synth import DEFAULT_BATCH_DATE, DEFAULT_PACK

    work = WORK / mode
    shutil.rmtree(work, ignore_errors=True)
    landing = work / "landing" / region
    landing.mkdir(parents=True)
    shutil.copytree(generated / region / DEFAULT_BATCH_DATE, landing / DEFAULT_BATCH_DATE)
    config = write_config(work, region, DEFAULT_PACK, tuple(methods))
    server, result = None, {}
    if mode == "server":
        sock = work / "drg.sock"
        t0 = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "jobs.cli", "serve", "--socket", str(sock)], env=env,
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if "listening" not in server.stdout.readline():
            sys.exit("drg serve did not start")
        result["server_start_s"] = round(time.perf_counter() - t0, 1)
        env = {**env, "DRG_SERVER": str(sock)}
    try:
        result["full_s"], result["full_steps"] = drg(["nightly", "--config", str(config)], env)
        shutil.copytree(generated / region / later, landing / later)
        result["incremental_s"], result["incremental_steps"] = drg(["nightly", "--config", str(config)], env)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    result["ratio"] = round(result["incremental_s"] / result["full_s"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300_000)
    parser.add_argument("--hospitals", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--methods", default="drg,dip", help="payment methods of the nightly config")
    parser.add_argument("--out", default=str(RESULTS / "commands-300k.json"))
    parser.add_argument("--note", default="", help="what else ran on the machine while measuring")
    args = parser.parse_args()
    env = {**os.environ, "DRG_PSEUDONYM_KEY": os.environ.get("DRG_PSEUDONYM_KEY", "bench-commands-key")}
    env.pop("DRG_SERVER", None)
    generated = WORK / "generated"
    from jobs.spark import get_spark

    spark = get_spark("drg-bench-commands")
    region, later = generate_split(spark, generated, args.cases, args.hospitals, args.seed)
    spark.stop()
    methods = args.methods.split(",")
    runs = {mode: two_nights(mode, generated, region, later, methods, env) for mode in ("commands", "server")}
    report = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
              "note": args.note, "cases": args.cases, "new_cases": args.cases // 100, "methods": methods,
              "runs": runs}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for mode, r in runs.items():
        print(f"{mode}: full {r['full_s']} s, +1% {r['incremental_s']} s, ratio {r['ratio']}"
              + (f" (server start {r['server_start_s']} s)" if "server_start_s" in r else ""))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
