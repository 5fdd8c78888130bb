"""Fault check: SIGKILL a pipeline process in the middle of a Delta write, then prove nothing broke.

What it shows (issue 6, "faults survived"): a process killed while writing a table leaves every table
readable at its last committed version (by Spark and by the independent delta-rs reader), the files it
had written but not committed stay invisible, a re-run completes, and the re-run's tables equal those
of an uninterrupted run. Delta makes this true by construction (a version exists only once its log
entry is written atomically); this script checks it instead of assuming it.

How: generate a canonical CSV input in Spark; run the command once uninterrupted into a reference
lake; run it again into a second lake and kill its whole process group (Python driver and JVM) with
SIGKILL as soon as the watched table has data files that no commit claims yet (or after --kill-after
seconds); verify; re-run; compare every table (minus volatile columns) both ways with exceptAll.

Run it at small size here; point it at the nightly job later, e.g.
  python bench/fault_kill.py --rows 1000000 --watch gold/grouped_cases \\
      --command '{python} -m jobs.cli nightly --config /path/nightly.yaml' --lake /path/from/config
Placeholders in --command: {python}, {lake}, {input}. Results: bench/results/fault_kill.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_COMMAND = "{python} -m jobs.cli ingest --lake {lake} --region 230100 --input {input} --batch-id night1"
# Columns that legitimately differ between an interrupted and an uninterrupted run: times, run ids, and
# the Delta versions a release records (a killed run may have committed some tables before it died).
VOLATILE = ("ingested_at", "run_id", "started_at", "ended_at", "created_at", "published_at", "table_versions")
BAD_ROW_EVERY = 997  # one row in this many has an unparseable cost, so quarantine is exercised too


def generate_input(spark, rows: int, out: Path) -> None:
    """Canonical-layout CSV files (header, `|`-joined code lists), a few rows deliberately unparseable."""
    from pyspark.sql import functions as F

    from schemas.discharge import FIELD_NAMES

    i = F.col("id")
    admit = F.date_add(F.lit("2024-01-01").cast("date"), (i % 300).cast("int"))
    los = (i % 20 + 1).cast("int")
    dx = F.array(*[F.lit(c) for c in ("I21.000x001", "J18.900", "K35.800", "O80.000", "I63.900", "E11.900")])
    cost = F.format_number(F.lit(1000.0) + (i * 37 % 50000), 2)
    values = {
        "case_id": F.concat(F.lit("C"), i.cast("string")),
        "hospital_id": F.concat(F.lit("H"), F.lpad((i % 40).cast("string"), 3, "0")),
        "region_code": F.lit("230100"),
        "patient_id": F.concat(F.lit("2301021990"), F.lpad((i % 100_000_000).cast("string"), 8, "0")),
        "sex": (i % 2 + 1).cast("string"),
        "age_years": (i % 90 + 1).cast("string"),
        "admit_date": admit.cast("string"),
        "discharge_date": F.date_add(admit, los).cast("string"),
        "los_days": los.cast("string"),
        "discharge_disposition": F.lit("1"),
        "principal_dx": F.element_at(dx, (i % 6 + 1).cast("int")),
        "secondary_dx": F.when(i % 3 == 0, F.lit("I10.x00x002|E11.900")),
        "principal_proc": F.when(i % 4 == 0, F.lit("36.0700")),
        "total_cost": F.when(i % BAD_ROW_EVERY == 0, F.lit("n/a")).otherwise(F.regexp_replace(cost, ",", "")),
        "payer": F.when(i % 2 == 0, F.lit("employee")).otherwise(F.lit("resident")),
    }
    columns = [values.get(name, F.lit(None).cast("string")).alias(name) for name in FIELD_NAMES]
    (spark.range(rows).repartition(4).select(*columns)
     .write.mode("overwrite").option("header", True).csv(str(out)))


def delta_tables(lake: Path) -> list[str]:
    """`layer/table` of every Delta table under the lake."""
    return sorted(str(p.parent.relative_to(lake)) for p in lake.glob("*/*/_delta_log"))


def committed_version(table: Path) -> int:
    """Highest version with a commit file (-1: none); a kill leaves at most temp files beyond it."""
    log = table / "_delta_log"
    versions = [int(p.name.split(".")[0]) for p in log.glob("*.json") if p.name.split(".")[0].isdigit()]
    return max(versions, default=-1)


def data_files(table: Path) -> set[str]:
    return {str(p.relative_to(table)) for p in table.rglob("*.parquet") if "_delta_log" not in p.parts}


def run_command(template: str, lake: Path, input_dir: Path, env: dict, kill_watch: str | None = None,
                kill_after: float | None = None) -> dict:
    """Run the command; optionally SIGKILL its process group mid-write. Returns what happened."""
    argv = shlex.split(template.format(python=shlex.quote(sys.executable), lake=lake, input=input_dir))
    started = time.monotonic()
    print(f"fault_kill: running {' '.join(argv[-8:])}" + (" (to be killed)" if kill_watch or kill_after else ""),
          flush=True)
    proc = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, trigger = False, None
    if kill_watch or kill_after:
        watched = lake / kill_watch if kill_watch else None
        claimed_version, claimed_files = -2, set()
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if kill_after and elapsed >= kill_after:
                trigger = f"after {kill_after} s"
            elif watched is not None and watched.exists():
                version = committed_version(watched)
                files = data_files(watched)
                if version != claimed_version:  # a commit landed: its files are claimed
                    claimed_version, claimed_files = version, files
                elif files - claimed_files:
                    trigger = (f"{kill_watch}: {len(files - claimed_files)} uncommitted data files "
                               f"beyond version {version}")
            if trigger:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
    stdout, stderr = proc.communicate()
    print(f"fault_kill: {'killed (' + trigger + ')' if killed else 'exit ' + str(proc.returncode)} after "
          f"{time.monotonic() - started:.0f} s", flush=True)
    return {"argv": argv, "returncode": proc.returncode, "killed": killed, "trigger": trigger,
            "seconds": round(time.monotonic() - started, 1), "stdout_tail": stdout[-800:],
            "stderr_tail": stderr[-1500:]}


def check_readable(spark, lake: Path) -> dict:
    """Every table at its last committed version, read by Spark and by delta-rs; orphans invisible."""
    from deltalake import DeltaTable as RsTable

    report = {}
    for name in delta_tables(lake):
        path = lake / name
        version = committed_version(path)
        entry = {"committed_version": version, "data_files_on_disk": len(data_files(path))}
        if version < 0:
            entry["state"] = "no commit yet (killed before the first commit): not a table"
            report[name] = entry
            continue
        df = spark.read.format("delta").load(str(path))
        entry["spark_rows"] = df.count()
        entry["spark_version"] = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first().version
        entry["files_in_snapshot"] = len(df.inputFiles())
        try:
            rs = RsTable(str(path))
            entry["delta_rs_version"] = rs.version()
            entry["delta_rs_rows"] = rs.to_pyarrow_dataset().count_rows()
        except Exception as exc:  # a protocol feature delta-rs lacks is not corruption; report it
            entry["delta_rs_error"] = str(exc).splitlines()[0][:300]
        entry["ok"] = (entry["spark_version"] == version
                       and entry.get("delta_rs_version", version) == version
                       and entry.get("delta_rs_rows", entry["spark_rows"]) == entry["spark_rows"])
        report[name] = entry
    return report


def compare_lakes(spark, reference: Path, other: Path, ignore: tuple[str, ...]) -> dict:
    """Per table: row counts and rows present in one lake but not the other (volatile columns dropped)."""
    result = {}
    for name in delta_tables(reference):
        if name.startswith("ops/"):
            continue  # the run log differs by design (extra failed attempt, run ids, times)
        ref = spark.read.format("delta").load(str(reference / name))
        if not (other / name / "_delta_log").exists():
            result[name] = {"ok": False, "error": "missing after re-run"}
            continue
        got = spark.read.format("delta").load(str(other / name))
        cols = [c for c in ref.columns if c not in ignore]
        only_ref = ref.select(cols).exceptAll(got.select(cols)).count()
        only_got = got.select(cols).exceptAll(ref.select(cols)).count()
        n_ref, n_got = ref.count(), got.count()
        result[name] = {"rows_reference": n_ref, "rows_rerun": n_got, "only_in_reference": only_ref,
                        "only_in_rerun": only_got, "ok": n_ref == n_got and only_ref == only_got == 0}
    return result


def balance(spark, lake: Path, rows: int | None) -> dict | None:
    """Ingest's invariant per batch, and the whole input accounted for once."""
    batches = lake / "bronze" / "batches"
    if not (batches / "_delta_log").exists():
        return None
    totals = spark.read.format("delta").load(str(batches)).selectExpr(
        "sum(rows_read) read", "sum(rows_accepted) accepted", "sum(rows_quarantined) quarantined").first()
    silver = spark.read.format("delta").load(str(lake / "silver" / "discharges")).count()
    quarantine = spark.read.format("delta").load(str(lake / "silver" / "quarantine")).count()
    ok = totals.read == totals.accepted + totals.quarantined and silver == totals.accepted
    ok = ok and quarantine == totals.quarantined and (rows is None or totals.read == rows)
    return {"rows_read": totals.read, "rows_accepted": totals.accepted, "rows_quarantined": totals.quarantined,
            "silver_rows": silver, "quarantine_rows": quarantine, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="rows to generate (default 300000)")
    parser.add_argument("--work", default=str(REPO / "bench" / "work" / "fault_kill"), help="scratch folder")
    parser.add_argument("--input", help="use this input folder instead of generating one")
    parser.add_argument("--command", default=DEFAULT_COMMAND, help="command to run ({python} {lake} {input})")
    parser.add_argument("--lake", help="lake the command writes, if fixed by its config (default: per run)")
    parser.add_argument("--watch", default="silver/discharges", help="kill while this layer/table is mid-write")
    parser.add_argument("--kill-after", type=float, help="kill after this many seconds instead of watching")
    parser.add_argument("--ignore-columns", default=",".join(VOLATILE), help="columns left out of comparisons")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "fault_kill.json"))
    args = parser.parse_args(argv)

    os.environ.setdefault("DRG_DRIVER_MEMORY", "1g")
    os.environ.setdefault("DRG_SPARK_MASTER", "local[2]")
    from jobs.spark import get_spark

    spark = get_spark("drg-fault-kill", {"spark.sql.shuffle.partitions": "4"})
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    input_dir = Path(args.input) if args.input else work / "input"
    if not args.input:
        generate_input(spark, args.rows, input_dir)
    # Children: a fixed pseudonym key (both lakes must hash identically) and modest memory.
    env = {**os.environ, "DRG_PSEUDONYM_KEY": os.environ.get("DRG_PSEUDONYM_KEY", "fault-kill-check"),
           "DRG_DRIVER_MEMORY": os.environ.get("DRG_CHILD_MEMORY", "2g")}

    def fresh_lake(name: str) -> Path:
        lake = Path(args.lake) if args.lake else work / name
        if args.lake:
            shutil.rmtree(lake, ignore_errors=True)
        return lake

    result: dict = {"rows": None if args.input else args.rows, "command": args.command, "watch": args.watch,
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    ignore = tuple(c for c in args.ignore_columns.split(",") if c)
    reference = fresh_lake("lake_reference")
    result["reference_run"] = run_command(args.command, reference, input_dir, env)
    if result["reference_run"]["returncode"] != 0:
        return finish(result, args.out, "the uninterrupted reference run failed")
    if args.lake:  # one fixed lake: keep the reference aside before the faulted run reuses the path
        kept = work / "lake_reference"
        shutil.copytree(reference, kept)
        reference = kept

    faulted = fresh_lake("lake_faulted")
    result["killed_run"] = run_command(args.command, faulted, input_dir, env, None if args.kill_after else args.watch,
                                       args.kill_after)
    if not result["killed_run"]["killed"]:
        return finish(result, args.out, "the process ended before the kill trigger fired: raise --rows")
    result["after_kill"] = check_readable(spark, faulted)
    result["rerun"] = run_command(args.command, faulted, input_dir, env)
    if result["rerun"]["returncode"] != 0:
        return finish(result, args.out, "the re-run after the kill failed")
    result["balance_rerun"] = balance(spark, faulted, result["rows"])
    result["balance_reference"] = balance(spark, reference, result["rows"])
    result["comparison"] = compare_lakes(spark, reference, faulted, ignore)
    checks = [e["ok"] for e in result["after_kill"].values() if "ok" in e]
    checks += [e["ok"] for e in result["comparison"].values()]
    checks += [b["ok"] for b in (result["balance_rerun"], result["balance_reference"]) if b]
    return finish(result, args.out, None if all(checks) else "a check failed (see the entries with ok=false)")


def finish(result: dict, out: str, failure: str | None) -> int:
    result["ok"] = failure is None
    result["failure"] = failure
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"fault_kill: {'OK' if failure is None else 'FAILED: ' + failure} -> {out}")
    return 0 if failure is None else 1


if __name__ == "__main__":
    sys.exit(main())
